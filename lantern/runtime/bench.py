"""`lantern bench`: decode and prefill speed of the LoopLM runtime, next to the machine's own ceiling.

One run loads a checkpoint (a real one, or a random one of the official shapes: `--shape 1.4b`,
created once under LANTERN_HOME/bench by a child process so it does not inflate this process's
memory peak), then measures, batch 1, greedy, EOS ignored:
- prefill tok/s (prompt_len / time to the first token) and decode tok/s over the new tokens;
- avg_exit_steps (1-based loop steps per decoded token) and, with `--gate-bias`, DEEP's savings
  on untrained weights;
- achieved_gbps: weight and KV bytes the decode really read per second (mean over the run, and
  the median token's);
- gemv_gbps: the same weight matrices as bare matrix-vector products, one pass between every two
  decoded tokens (the memory-bound ceiling of batch-1 decode on this machine, median pass), and
  fraction_of_gemv_ceiling: the median over tokens of (token GB/s / the pass just before it), so a
  shared machine's slow moments hit both sides of the ratio;
- peak memory (RSS on CPU, allocated on CUDA) and load time and load peak / weight bytes;
- with `--int8`, top-1 agreement of the int8 model with the unquantized one over fixed prompts.
`--mode both` alternates FAST and DEEP runs (`--rounds` pairs) in one process and reports the
median DEEP/FAST speed-up over the pairs against the target 0.85 x 4/d.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lantern.runtime.generate import GenerationOptions, generate


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_checkpoint_dir(home: Path, shape: str, seed: int = 0) -> Path:
    """A random checkpoint of `shape`, created once by a child process."""
    path = home / "bench" / f"random-{shape}-seed{seed}"
    if not (path / "model.safetensors").exists():
        code = f"from lantern.runtime.testing import make_random_checkpoint; make_random_checkpoint({str(path)!r}, {shape!r}, seed={seed})"
        subprocess.run([sys.executable, "-c", code], check=True)
    return path


def weight_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class GemvCeiling:
    """Bare matrix-vector products over every layer projection and the head, with the same weights
    and kernels as decode: one `run_pass()` reads all of them once and returns its GB/s."""

    def __init__(self, model, device: torch.device) -> None:
        self.linears = [m for m in model.model.layers.modules() if hasattr(m, "in_features") and not isinstance(m, nn.Embedding)]
        self.linears.append(model.lm_head)
        dtype = model.model.embed_tokens.weight.dtype
        self.inputs = {m.in_features: torch.randn(1, 1, m.in_features, dtype=dtype, device=device) for m in self.linears}
        self.bytes = sum(weight_bytes(m) for m in self.linears)
        self.device = device

    @torch.inference_mode()
    def run_pass(self) -> float:
        _sync(self.device)
        started = time.perf_counter()
        for m in self.linears:
            m(self.inputs[m.in_features])
        _sync(self.device)
        return self.bytes / (time.perf_counter() - started) / 1e9


def decode_run(lm, prompt: torch.Tensor, new_tokens: int, mode: str, threshold: float, ceiling: GemvCeiling | None = None) -> dict[str, Any]:
    """Greedy decode, timing every token. With `ceiling`, one GEMV pass runs between tokens (outside
    the tokens' time), so each token is compared with the machine's bandwidth at that moment."""
    opts = GenerationOptions(max_new_tokens=new_tokens, mode=mode, exit_threshold=threshold, stop_ids=set())
    device = lm.device
    _sync(device)
    started = time.perf_counter()
    tokens, per_token_seconds, ceilings = [], [], []
    resumed = started
    for out in generate(lm.model, None, prompt, opts):  # the next token is computed only when resumed
        _sync(device)
        now = time.perf_counter()
        if tokens:
            per_token_seconds.append(now - resumed)
        tokens.append(out[0])
        if ceiling is not None and len(tokens) < new_tokens:
            ceilings.append(ceiling.run_pass())
        resumed = time.perf_counter()
        if len(tokens) == 1:
            first_at = now - started
    decode_seconds = sum(per_token_seconds)
    decoded = tokens[1:]
    config = lm.config
    layer_bytes = weight_bytes(lm.model.model.layers) + weight_bytes(lm.model.model.norm) + weight_bytes(lm.model.model.early_exit_gate)
    head_bytes = weight_bytes(lm.model.lm_head)
    kv_per_position = 2 * config.num_key_value_heads * config.head_dim * lm.model.model.embed_tokens.weight.element_size()
    per_token_bytes = []
    for i, token in enumerate(decoded):
        context = prompt.shape[1] + i + 1
        steps = token.exit_step + 1
        per_token_bytes.append(steps * (layer_bytes + config.num_hidden_layers * kv_per_position * context) + head_bytes)
    avg_steps = sum(t.exit_step + 1 for t in decoded) / max(len(decoded), 1)
    if not decoded:
        return {"mode": mode, "prefill_tok_s": round(prompt.shape[1] / first_at, 2), "decode_tok_s": None,
                "avg_exit_steps": None, "achieved_gbps": None, "achieved_gbps_median": None}
    return {
        "mode": mode,
        "prefill_tok_s": round(prompt.shape[1] / first_at, 2),
        "decode_tok_s": round(len(decoded) / decode_seconds, 3),
        "decode_tok_s_median": round(1 / statistics.median(per_token_seconds), 3),
        "avg_exit_steps": round(avg_steps, 3),
        "achieved_gbps": round(sum(per_token_bytes) / decode_seconds / 1e9, 2),
        "achieved_gbps_median": round(statistics.median(b / t for b, t in zip(per_token_bytes, per_token_seconds)) / 1e9, 2),
        # Each token against the GEMV pass run just before it, so a shared machine's slow moments hit both.
        "fraction_of_gemv_ceiling": round(statistics.median(b / t / 1e9 / c for b, t, c in zip(per_token_bytes, per_token_seconds, ceilings)), 3) if ceilings else None,
        "gemv_gbps": round(statistics.median(ceilings), 2) if ceilings else None,
    }


def int8_agreement(reference_lm, quantized_lm, prompts: list[torch.Tensor]) -> dict[str, float]:
    """Top-1 agreement of the final-step logits at every prompt position, and their relative error."""
    agree = total = 0
    errors = []
    for ids in prompts:
        a, _ = reference_lm.step_logits(ids)
        b, _ = quantized_lm.step_logits(ids)
        agree += int((a[-1].argmax(-1) == b[-1].argmax(-1)).sum())
        total += a[-1].argmax(-1).numel()
        errors.append(float((a[-1] - b[-1]).norm() / a[-1].norm()))
    return {"int8_top1_agreement": round(agree / total, 4), "int8_logits_rel_error": round(sum(errors) / len(errors), 4)}


def run(model: str | None, shape: str | None, prompt_len: int, new_tokens: int, mode: str, int8: bool, gate_bias: float,
        threshold: float, device: str, dtype: str, home: Path, threads: int | None = None, rounds: int = 3) -> dict[str, Any]:
    from lantern.runtime.loader import load, resolve_device

    if threads:
        torch.set_num_threads(threads)
    path = random_checkpoint_dir(home, shape) if shape else model
    from transformers import PreTrainedTokenizerFast  # noqa: F401  (import cost is not load cost)

    rss_before = peak_rss_mb()
    started = time.perf_counter()
    lm = load(path, device=device, dtype=dtype, int8=int8)
    load_seconds = time.perf_counter() - started
    dev = resolve_device(device)
    weights = weight_bytes(lm.model)
    load_peak = (peak_rss_mb() - rss_before) if dev.type == "cpu" else torch.cuda.max_memory_allocated() / 2**20
    if gate_bias:
        with torch.no_grad():
            lm.model.model.early_exit_gate.bias += gate_bias
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(3, min(lm.config.vocab_size, 4096), (1, prompt_len), generator=gen).to(dev)
    decode_run(lm, prompt[:, :8], 3, "fast", threshold)  # warm-up: kernels, allocator, page cache
    ceiling = GemvCeiling(lm.model, dev)
    ceiling.run_pass()
    result: dict[str, Any] = {
        "model": str(path), "shape": shape, "dtype": dtype, "int8": int8, "device": _device_name(dev),
        "threads": torch.get_num_threads(), "prompt_len": prompt_len, "new_tokens": new_tokens, "gate_bias": gate_bias,
        "exit_threshold": threshold, "weight_gb": round(weights / 1e9, 3), "load_seconds": round(load_seconds, 2),
        "load_peak_over_weights": round(load_peak * 2**20 / weights, 3) if dev.type == "cpu" else None,
    }
    modes = ["fast", "deep"] if mode == "both" else [mode]
    runs = {m: decode_run(lm, prompt, new_tokens, m, threshold, ceiling) for m in modes}
    speedups = []
    if mode == "both":
        # A shared machine drifts between runs, so the ratio comes from alternating pairs of runs.
        speedups.append(runs["deep"]["decode_tok_s"] / runs["fast"]["decode_tok_s"])
        for _ in range(rounds - 1):
            fast = decode_run(lm, prompt, new_tokens, "fast", threshold)
            deep = decode_run(lm, prompt, new_tokens, "deep", threshold)
            speedups.append(deep["decode_tok_s"] / fast["decode_tok_s"])
    result["gemv_gbps"] = statistics.median(r["gemv_gbps"] for r in runs.values() if r["gemv_gbps"])
    if mode == "both":
        result["runs"] = runs
        d = runs["deep"]["avg_exit_steps"]
        result["deep_speedup"] = round(statistics.median(speedups), 3)
        result["deep_speedup_each_pair"] = [round(x, 3) for x in speedups]
        result["deep_speedup_target"] = round(0.85 * lm.config.num_steps / d, 3)
    else:
        result |= runs[mode]
    if int8:
        plain = load(path, device=device, dtype=dtype)
        prompts = [torch.randint(3, min(lm.config.vocab_size, 4096), (1, 32), generator=gen).to(dev) for _ in range(4)]
        result |= int8_agreement(plain, lm, prompts)
        if dtype != "float32":
            # The noise floor: how much plain bf16 rounding alone moves the same logits (vs float32).
            # Random weights make the 96 layer applications chaotic, so both numbers are pessimistic.
            exact = load(path, device=device, dtype="float32")
            control = int8_agreement(exact, plain, prompts)
            result |= {f"{dtype}_vs_float32_top1_agreement": control["int8_top1_agreement"],
                       f"{dtype}_vs_float32_logits_rel_error": control["int8_logits_rel_error"]}
            del exact
        del plain
    result["peak_mem_mb"] = round(peak_rss_mb() if dev.type == "cpu" else torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {os.cpu_count()} cores"
