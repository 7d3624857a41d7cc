"""The Ouro LoopLM in plain PyTorch: the fast path used for generation.

Module and parameter names match the official checkpoint exactly (`model.layers.N.self_attn.q_proj`,
`model.early_exit_gate`, `lm_head`, ...), so `load_state_dict` takes the snapshot's tensors as they
are. One loop step = all L layers ("sandwich" norms around attention and MLP) followed by the final
norm; the same weights run T times. `loop_step` runs one step for some new positions, reading and
writing the static KV cache; `step_logits` runs the whole depth without a cache.

This module knows nothing about exit decisions, sampling or tokenizers (see exit.py, generate.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lantern.runtime.cache import StaticKVCache
from lantern.runtime.config import OuroConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()  # normalise in fp32, as the reference does, then cast back before the weight
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def rope_tables(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [B, 1, S, head_dim] for integer positions [B, S], computed in fp32."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    freqs = positions.float()[..., None] * inv_freq  # [B, S, D/2]
    angles = torch.cat([freqs, freqs], dim=-1)[:, None]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Attention(nn.Module):
    def __init__(self, config: OuroConfig) -> None:
        super().__init__()
        h, kv, d = config.num_attention_heads, config.num_key_value_heads, config.head_dim
        self.heads, self.kv_heads, self.head_dim = h, kv, d
        self.q_proj = nn.Linear(config.hidden_size, h * d, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, kv * d, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, kv * d, bias=False)
        self.o_proj = nn.Linear(h * d, config.hidden_size, bias=False)

    def forward(self, x, cos, sin, mask, cache: StaticKVCache | None, slot: int, start: int) -> torch.Tensor:
        b, s, _ = x.shape  # x: [B, S, hidden]
        q = self.q_proj(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)  # [B, H, S, D]
        k = self.k_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
        if cache is not None:
            k, v = cache.write(slot, start, k, v)  # now [B, H_kv, start+S, D]
        if x.device.type == "cpu" and s <= 4:
            out = self.few_query(q, k, v, mask)
        else:
            out = F.scaled_dot_product_attention(q, *self.per_head(k, v), attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, self.heads * self.head_dim))

    def rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """RoPE: x [B, H, S, D] rotated by the tables cos, sin [B, 1, S, D] (kernels.NativeAttention overrides it)."""
        return x * cos + rotate_half(x) * sin

    def per_head(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """k, v with each key-value head repeated for the query heads that share it (GQA)."""
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        return k, v

    def few_query(self, q, k, v, mask) -> torch.Tensor:
        """Attention of the few query rows of a decode step on CPU (kernels.NativeAttention overrides it)."""
        return few_query_attention(q, *self.per_head(k, v), mask)


def few_query_attention(q, k, v, mask) -> torch.Tensor:
    """Softmax attention of a few query rows (decode) in float32 (or float64), as two einsums. On CPU this is
    4x (136 cached positions) to 9x (1024) faster than PyTorch's attention kernel on the same float32
    inputs, and 2-3x faster than its bf16 one, with the same numbers up to float32 rounding.
    q [B, H, S, D], k/v [B, H, T, D], mask [B, 1, S, T] (True: attend) or None (attend to all)."""
    wide = torch.promote_types(q.dtype, torch.float32)  # float64 models stay float64
    scores = torch.einsum("bhsd,bhtd->bhst", q.to(wide) * q.shape[-1] ** -0.5, k.to(wide))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.einsum("bhst,bhtd->bhsd", torch.softmax(scores, dim=-1), v.to(wide)).to(q.dtype)


class MLP(nn.Module):
    def __init__(self, config: OuroConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, config: OuroConfig) -> None:
        super().__init__()
        eps = config.rms_norm_eps
        self.self_attn = Attention(config)
        self.mlp = MLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, eps)
        self.input_layernorm_2 = RMSNorm(config.hidden_size, eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps)
        self.post_attention_layernorm_2 = RMSNorm(config.hidden_size, eps)

    def forward(self, x, cos, sin, mask, cache, slot, start) -> torch.Tensor:
        x = x + self.input_layernorm_2(self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, slot, start))
        return x + self.post_attention_layernorm_2(self.mlp(self.post_attention_layernorm(x)))


class Backbone(nn.Module):
    def __init__(self, config: OuroConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.early_exit_gate = nn.Linear(config.hidden_size, 1, bias=True)


class OuroForCausalLM(nn.Module):
    def __init__(self, config: OuroConfig) -> None:
        super().__init__()
        self.config = config
        self.model = Backbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_tokens(input_ids)

    def rope(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return rope_tables(positions, self.config.head_dim, self.config.rope_theta, dtype)

    def loop_step(self, h, step: int, cos, sin, mask, cache: StaticKVCache | None = None, start: int = 0):
        """One pass through all layers plus the final norm: h [B, S, hidden] -> (h, gate logits [B, S] fp32)."""
        layers = self.config.num_hidden_layers
        for index, layer in enumerate(self.model.layers):
            h = layer(h, cos, sin, mask, cache, step * layers + index, start)
        return self.step_output(h)

    def step_output(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """After a loop step's layers: the final norm, and the exit gate's logits [B, S] (fp32)."""
        h = self.model.norm(h)
        return h, self.model.early_exit_gate(h).squeeze(-1).float()

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(h).float()

    @torch.inference_mode()
    def step_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Full depth, no cache: logits [T, B, S, V] (fp32) and gates [T, B, S] = sigmoid(exit gate)."""
        positions, mask = positions_and_mask(input_ids, attention_mask)
        h = self.embed(input_ids)
        cos, sin = self.rope(positions, h.dtype)
        logits, gates = [], []
        for step in range(self.config.num_steps):
            h, gate = self.loop_step(h, step, cos, sin, mask)
            logits.append(self.logits(h))
            gates.append(torch.sigmoid(gate))
        return torch.stack(logits), torch.stack(gates)


def positions_and_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor | None, past: int = 0,
                       past_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """RoPE positions [B, S] and a boolean attention mask [B, 1, S, past+S] (None when plain causal
    with nothing masked: SDPA then needs no mask). Left padding: positions count real tokens only."""
    b, s = input_ids.shape
    device = input_ids.device
    if attention_mask is None and past_mask is None:
        positions = torch.arange(past, past + s, device=device).expand(b, s)
        if s == 1:
            return positions, None
        causal = torch.ones(s, past + s, dtype=torch.bool, device=device).tril(diagonal=past)
        return positions, causal[None, None].expand(b, 1, s, past + s)
    new = attention_mask if attention_mask is not None else torch.ones(b, s, dtype=torch.long, device=device)
    full = torch.cat([past_mask, new], dim=1) if past_mask is not None else new
    positions = (full.cumsum(dim=1) - 1).clamp(min=0)[:, past:]
    causal = torch.ones(s, past + s, dtype=torch.bool, device=device).tril(diagonal=past)
    mask = causal[None, None] & full.bool()[:, None, None, :]
    # A fully padded query row would make softmax NaN; let it see itself (its output is never used).
    eye = torch.zeros(s, past + s, dtype=torch.bool, device=device)
    eye[torch.arange(s), past + torch.arange(s)] = True
    return positions, mask | eye[None, None]
