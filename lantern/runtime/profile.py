"""Where a decoded token's time goes: `lantern bench --profile`.

Timers hook the model's modules for a short greedy decode (prefill excluded) and charge each
module's own time (its time minus that of the hooked modules inside it) to a part:
- matrix-vector products: every projection and the output head (plain or quantized Linears);
- attention: the rest of the attention module (RoPE, KV cache writes, softmax over the cache);
- norms and elementwise: RMSNorms, SwiGLU's silu and product, the residual adds of each block;
- exit gate and readback: the 1-output gate, the Q-exit rule and turning its answer into Python;
- Python and glue: whatever is left of the token's time (the loop over steps and layers,
  embedding, RoPE tables, sampling, generator bookkeeping, and the hooks' own small cost).
On CPU every kernel finishes before the next Python line runs, so wall-clock timers see the real
cost; the hooks add a few microseconds per module call, which lands in "Python and glue".
Where a layer's decode step runs as one native call (kernels.NativeBlock), or all layers of a loop
step do (kernels.NativeOuro), no hook inside it fires: the native layers time their own products
and attention (steady clock, switched on only here) and the rest of the call (norms, SwiGLU,
residual adds, and the call itself) is charged to "norms and elementwise".

This module knows the runtime's module classes; it changes nothing about them outside a profile.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from lantern.runtime import generate as generate_module
from lantern.runtime import kernels
from lantern.runtime.model import MLP, Attention, Block, RMSNorm

PARTS = ("matrix-vector products", "attention", "norms and elementwise", "exit gate and readback", "Python and glue")


class _Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.stack: list[list] = []  # [part, started, seconds of hooked children]

    def enter(self, part: str) -> None:
        self.stack.append([part, time.perf_counter(), 0.0])

    def leave(self) -> None:
        part, started, children = self.stack.pop()
        elapsed = time.perf_counter() - started
        self.seconds[part] += elapsed - children
        if self.stack:
            self.stack[-1][2] += elapsed


def _part(name: str, module: nn.Module) -> str | None:
    if name.endswith("early_exit_gate"):
        return "exit gate and readback"
    if isinstance(module, Attention):
        return "attention"
    if isinstance(module, (RMSNorm, MLP, Block)):
        return "norms and elementwise"
    if hasattr(module, "in_features") and hasattr(module, "out_features"):
        return "matrix-vector products"  # nn.Linear, Int8Linear, Int4Linear
    return None


@contextmanager
def _hooked(model: nn.Module, timers: _Timers):
    handles = []
    for name, module in model.named_modules():
        part = _part(name, module)
        if part is None:
            continue
        handles.append(module.register_forward_pre_hook(lambda *_, part=part: timers.enter(part)))
        handles.append(module.register_forward_hook(lambda *_: timers.leave()))
    originals = {name: getattr(generate_module, name) for name in ("cumulative_exit", "exits_now")}

    def timed(function):
        def wrapper(*args, **kwargs):
            timers.enter("exit gate and readback")
            try:
                result = function(*args, **kwargs)
                return result
            finally:
                timers.leave()
        return wrapper

    for name, function in originals.items():
        setattr(generate_module, name, timed(function))
    run_layers = kernels.NativeOuro.run_layers

    def timed_layers(self, *args):  # a loop step's native layers: timed as a whole, as a Block's call is
        timers.enter("norms and elementwise")
        try:
            return run_layers(self, *args)
        finally:
            timers.leave()

    kernels.NativeOuro.run_layers = timed_layers
    fused = _fused_kernels(model)
    if fused is not None:
        fused.set_layer_timing(True)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for name, function in originals.items():
            setattr(generate_module, name, function)
        kernels.NativeOuro.run_layers = run_layers
        if fused is not None:
            fused.set_layer_timing(False)


def _fused_kernels(model: nn.Module):
    """The native kernels when the model has layers that may run fused (kernels.NativeBlock), else
    None (a GPU or float32 model never loads them)."""
    return kernels.native() if any(type(m) is kernels.NativeBlock for m in model.modules()) else None


def _native_layer_seconds(model: nn.Module) -> tuple[float, float]:
    """Seconds the fused native layers spent in products and in attention since the last call."""
    fused = _fused_kernels(model)
    if fused is None:
        return 0.0, 0.0
    products, attention, _ = fused.take_layer_timings()
    return products, attention


@torch.inference_mode()
def profile_decode(lm, prompt: torch.Tensor, new_tokens: int, mode: str, threshold: float) -> dict[str, Any]:
    """Milliseconds per decoded token and share of its time for each of PARTS."""
    timers = _Timers()
    opts = generate_module.GenerationOptions(max_new_tokens=new_tokens, mode=mode, exit_threshold=threshold, stop_ids=set())
    decoded, seconds = 0, 0.0
    with _hooked(lm.model, timers):
        tokens = generate_module.generate(lm.model, None, prompt, opts)
        next(tokens)  # prefill and the first token: not decode
        timers.seconds.clear()
        _native_layer_seconds(lm.model)
        while True:
            started = time.perf_counter()
            try:
                next(tokens)
            except StopIteration:
                break
            seconds += time.perf_counter() - started
            decoded += 1
    parts = dict(timers.seconds)
    products, attention = _native_layer_seconds(lm.model)  # inside the fused layers' calls, charged to norms by the hooks
    parts["matrix-vector products"] = parts.get("matrix-vector products", 0.0) + products
    parts["attention"] = parts.get("attention", 0.0) + attention
    parts["norms and elementwise"] = parts.get("norms and elementwise", 0.0) - products - attention
    parts["Python and glue"] = max(seconds - sum(parts.values()), 0.0)
    per_token = {part: parts.get(part, 0.0) / max(decoded, 1) * 1000 for part in PARTS}
    total = sum(per_token.values()) or 1.0
    return {"tokens": decoded, "ms_per_token": round(seconds / max(decoded, 1) * 1000, 1),
            "parts": {part: {"ms": round(ms, 2), "share": round(ms / total, 3)} for part, ms in per_token.items()}}


def profile_table(profile: dict[str, Any]) -> list[str]:
    lines = [f"profile over {profile['tokens']} decoded tokens, {profile['ms_per_token']:.1f} ms per token:",
             f"  {'part':<26} {'ms/token':>9} {'share':>7}"]
    for part, row in profile["parts"].items():
        lines.append(f"  {part:<26} {row['ms']:>9.1f} {row['share']:>7.1%}")
    return lines
