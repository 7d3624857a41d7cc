"""A naive reference implementation of Ouro, for tests: slow, obvious, float64-capable.

It works straight from the checkpoint's tensors (a name -> tensor dict) with no nn.Modules, no
static cache and no batching: attention is an explicit masked softmax over Python lists of
per-position keys/values, the exit rule is a plain loop over steps, and DEEP mode's "last exited"
cache policy is literally "append the exit step's K/V to the deeper steps' lists". Every fast path
in the runtime is tested against this file.
"""

from __future__ import annotations

import math

import torch

from lantern.runtime.config import OuroConfig


class ReferenceOuro:
    def __init__(self, tensors: dict[str, torch.Tensor], config: OuroConfig, dtype: torch.dtype = torch.float64) -> None:
        self.w = {name: t.to(dtype) for name, t in tensors.items()}
        self.c = config
        self.dtype = dtype

    # --- pieces ---------------------------------------------------------------------------
    def norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        variance = (x * x).mean(-1, keepdim=True)
        return self.w[name] * (x / torch.sqrt(variance + self.c.rms_norm_eps))

    def rope(self, x: torch.Tensor, positions: list[int]) -> torch.Tensor:
        """x [n, H, D] rotated by each row's position (rotate-half convention)."""
        d = self.c.head_dim
        out = torch.empty_like(x)
        for row, pos in enumerate(positions):
            for i in range(d // 2):
                angle = pos / (self.c.rope_theta ** (2 * i / d))
                cos, sin = math.cos(angle), math.sin(angle)
                a, b = x[row, :, i], x[row, :, i + d // 2]
                out[row, :, i] = a * cos - b * sin
                out[row, :, i + d // 2] = b * cos + a * sin
        return out

    def layer(self, index: int, x: torch.Tensor, positions: list[int], past_k: list, past_v: list):
        """x [n, hidden] for n new tokens after len(past_k) cached ones -> (x, new k list, new v list)."""
        p = f"model.layers.{index}."
        c = self.c
        n = x.shape[0]
        y = self.norm(x, p + "input_layernorm.weight")
        q = (y @ self.w[p + "self_attn.q_proj.weight"].T).view(n, c.num_attention_heads, c.head_dim)
        k = (y @ self.w[p + "self_attn.k_proj.weight"].T).view(n, c.num_key_value_heads, c.head_dim)
        v = (y @ self.w[p + "self_attn.v_proj.weight"].T).view(n, c.num_key_value_heads, c.head_dim)
        q, k = self.rope(q, positions), self.rope(k, positions)
        keys = list(past_k) + list(k)
        values = list(past_v) + list(v)
        m = len(past_k)
        heads = []
        for i in range(n):
            visible_k = torch.stack(keys[: m + i + 1])  # [j, H_kv, D]
            visible_v = torch.stack(values[: m + i + 1])
            rep = c.num_attention_heads // c.num_key_value_heads
            visible_k = visible_k.repeat_interleave(rep, dim=1)
            visible_v = visible_v.repeat_interleave(rep, dim=1)
            scores = torch.einsum("hd,jhd->hj", q[i], visible_k) / math.sqrt(c.head_dim)
            weights = torch.softmax(scores, dim=-1)
            heads.append(torch.einsum("hj,jhd->hd", weights, visible_v).reshape(-1))
        attn = torch.stack(heads) @ self.w[p + "self_attn.o_proj.weight"].T
        x = x + self.norm(attn, p + "input_layernorm_2.weight")
        y = self.norm(x, p + "post_attention_layernorm.weight")
        gate = y @ self.w[p + "mlp.gate_proj.weight"].T
        up = y @ self.w[p + "mlp.up_proj.weight"].T
        mlp = (gate * torch.sigmoid(gate) * up) @ self.w[p + "mlp.down_proj.weight"].T
        x = x + self.norm(mlp, p + "post_attention_layernorm_2.weight")
        return x, list(k), list(v)

    def end_of_step(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.norm(x, "model.norm.weight")
        gate = x @ self.w["model.early_exit_gate.weight"].T + self.w["model.early_exit_gate.bias"]
        return x, gate[:, 0]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.w["lm_head.weight"].T

    def exit_rule(self, gates: list[float], threshold: float, min_steps: int = 1, max_steps: int | None = None) -> int:
        steps = self.c.num_steps
        last = min(max_steps or steps, steps) - 1
        survive, cdf = 1.0, 0.0
        for t, g in enumerate(gates):
            lam = 1.0 / (1.0 + math.exp(-g))
            cdf += lam * survive
            survive *= 1.0 - lam
            if t >= last:
                return t
            if t + 1 >= min_steps and cdf >= threshold:
                return t
        return len(gates) - 1

    # --- whole computations -------------------------------------------------------------------
    def step_logits(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Full depth for one sequence: logits [T, S, V], gates [T, S] = sigmoid(gate)."""
        x = self.w["model.embed_tokens.weight"][torch.tensor(ids)]
        positions = list(range(len(ids)))
        logits, gates = [], []
        for _ in range(self.c.num_steps):
            for index in range(self.c.num_hidden_layers):
                x, _, _ = self.layer(index, x, positions, [], [])
            x, gate = self.end_of_step(x)
            logits.append(self.logits(x))
            gates.append(torch.sigmoid(gate))
        return torch.stack(logits), torch.stack(gates)

    def generate_greedy(self, ids: list[int], max_new_tokens: int, mode: str = "deep", threshold: float = 0.5,
                        min_steps: int = 1, max_steps: int | None = None, stop_ids: set[int] | None = None) -> list[tuple[int, int]]:
        """[(token id, exit step)] with the "last exited" cache policy in DEEP mode."""
        T, L = self.c.num_steps, self.c.num_hidden_layers
        kv_k = [[[] for _ in range(L)] for _ in range(T)]
        kv_v = [[[] for _ in range(L)] for _ in range(T)]
        x = self.w["model.embed_tokens.weight"][torch.tensor(ids)]
        positions = list(range(len(ids)))
        hidden, gates = [], []
        for t in range(T):
            for index in range(L):
                x, k, v = self.layer(index, x, positions, kv_k[t][index], kv_v[t][index])
                kv_k[t][index] += k
                kv_v[t][index] += v
            x, gate = self.end_of_step(x)
            hidden.append(x[-1])
            gates.append(float(gate[-1]))
        exit_at = self.exit_rule(gates, threshold, min_steps, max_steps) if mode == "deep" else T - 1
        out: list[tuple[int, int]] = []
        position = len(ids)
        for _ in range(max_new_tokens):
            token = int(torch.argmax(self.logits(hidden[exit_at])))
            out.append((token, exit_at))
            if stop_ids and token in stop_ids:
                break
            x = self.w["model.embed_tokens.weight"][torch.tensor([token])]
            hidden, gates = [], []
            for t in range(T):
                for index in range(L):
                    x, k, v = self.layer(index, x, [position], kv_k[t][index], kv_v[t][index])
                    kv_k[t][index] += k
                    kv_v[t][index] += v
                x, gate = self.end_of_step(x)
                hidden.append(x[0])
                gates.append(float(gate[0]))
                if mode == "deep" and self._fires(gates, threshold, min_steps, max_steps):
                    break
            exit_at = len(gates) - 1
            for deeper in range(exit_at + 1, T):  # "last exited": deeper steps see the exit step's K/V
                for index in range(L):
                    kv_k[deeper][index].append(kv_k[exit_at][index][-1])
                    kv_v[deeper][index].append(kv_v[exit_at][index][-1])
            position += 1
        return out

    def _fires(self, gates: list[float], threshold: float, min_steps: int, max_steps: int | None) -> bool:
        """Did the rule fire at the latest step, given only the gates seen so far?"""
        t = len(gates) - 1
        last = min(max_steps or self.c.num_steps, self.c.num_steps) - 1
        if t >= last:
            return True
        survive, cdf = 1.0, 0.0
        for g in gates:
            lam = 1.0 / (1.0 + math.exp(-g))
            cdf += lam * survive
            survive *= 1.0 - lam
        return t + 1 >= min_steps and cdf >= threshold
