"""Lantern's native runtime for Ouro looped language models (plain PyTorch, no remote code).

`load(path_or_id, device, dtype)` returns a LoopLM (lm.py). Modules: config (shapes, validation),
model (the fast path), cache (static KV cache), exit (the Q-exit rule), generate (prefill, decode,
sampling), loader (safetensors, tokenizer), quantize (int8 weights), reference (naive, for tests),
testing (random checkpoints in the official format), bench (`lantern bench`), locate (find/pull).
"""

from __future__ import annotations


def load(path_or_id, device="cpu", dtype="bfloat16", int8: bool = False):
    from lantern.runtime.loader import load as _load

    return _load(path_or_id, device=device, dtype=dtype, int8=int8)


__all__ = ["load"]
