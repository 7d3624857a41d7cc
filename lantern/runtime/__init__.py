"""Lantern's native runtime for Ouro looped language models (PyTorch, no remote code).

`load(path_or_id, device, dtype, quant=...)` returns a LoopLM (lm.py). Modules: config (shapes,
validation), model (the fast path), cache (static KV cache), exit (the Q-exit rule), generate
(prefill, decode, sampling), loader (safetensors, tokenizer), quantize (int8 and int4 weights),
kernels (native bf16/int4 matrix-vector products where the CPU has AVX-512 BF16), threads (how many
CPU threads), reference (naive, for tests), testing (random checkpoints in the official format),
bench (`lantern bench`), profile (`lantern bench --profile`), locate (find/pull).
"""

from __future__ import annotations


def load(path_or_id, device="cpu", dtype="bfloat16", int8: bool = False, quant: str | None = None):
    from lantern.runtime.loader import load as _load

    return _load(path_or_id, device=device, dtype=dtype, int8=int8, quant=quant)


__all__ = ["load"]
