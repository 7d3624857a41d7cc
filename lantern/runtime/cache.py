"""The static KV cache: one preallocated slot per (loop step, layer), written in place.

Shape per tensor: [T * L, B, H_kv, max_len, head_dim]; slot index = step * L + layer. Positions
are cache columns: column i holds token i of every sequence in the batch (left padding keeps
columns aligned; padded columns are masked, never read). Nothing is concatenated per token.

`fill_skipped_steps` implements the "last exited" policy of DEEP mode: when a token stopped at
step e, the slots of steps e+1..T-1 receive its step-e keys and values, so a later token looping
deeper reads the newest version that exists.
"""

from __future__ import annotations

import torch


class StaticKVCache:
    def __init__(self, num_steps: int, num_layers: int, batch: int, kv_heads: int, max_len: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device | str) -> None:
        shape = (num_steps * num_layers, batch, kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.num_steps, self.num_layers, self.max_len = num_steps, num_layers, max_len

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2

    def write(self, slot: int, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v ([B, H, S, D]) at columns start..start+S of `slot`; return the slot's prefix up to there."""
        end = start + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"the KV cache holds {self.max_len} positions; this sequence needs {end}")
        self.k[slot, :, :, start:end] = k
        self.v[slot, :, :, start:end] = v
        return self.k[slot, :, :, :end], self.v[slot, :, :, :end]

    def fill_skipped_steps(self, exit_steps: torch.Tensor, column: int) -> None:
        """For each sequence b that exited at step exit_steps[b] < T-1, copy its K/V at `column`
        from the exit step's slots into every deeper step's slots ("last exited")."""
        L = self.num_layers
        for b, exit_at in enumerate(exit_steps.tolist()):
            for deeper in range(exit_at + 1, self.num_steps):
                self.k[deeper * L : (deeper + 1) * L, b, :, column] = self.k[exit_at * L : (exit_at + 1) * L, b, :, column]
                self.v[deeper * L : (deeper + 1) * L, b, :, column] = self.v[exit_at * L : (exit_at + 1) * L, b, :, column]
