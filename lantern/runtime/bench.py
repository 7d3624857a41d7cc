"""`lantern bench`: decode and prefill speed of the LoopLM runtime, next to the machine's own ceilings.

One run loads a checkpoint (a real one, or a random one of the official shapes: `--shape 1.4b`,
created once under LANTERN_HOME/bench by a child process so it does not inflate this process's
memory peak), then measures, batch 1, greedy, EOS ignored:
- prefill tok/s (prompt_len / time to the first token) and decode tok/s over the new tokens (a
  comparison of quantization modes takes each round's prefill as the median of PREFILL_SAMPLES);
- avg_exit_steps (1-based loop steps per decoded token) and, with `--gate-bias`, DEEP's savings
  on untrained weights;
- bytes_per_token: the weight and KV bytes one decoded token must read (layer weights once per loop
  step run, the KV prefix per step and layer, the output head once), and achieved_gbps, those bytes
  per second (mean over the run, and the median token's);
- read_gbps, the honest ceiling: the machine's streaming read bandwidth, a buffer of several
  hundred MB (far larger than the caches) summed by 1..all cores' threads, a few passes between
  every two decoded tokens (median per thread count, the best count taken); fraction_of_read_ceiling is the median over tokens of (token GB/s / the
  read bandwidth measured just before it), so a shared machine's slow moments hit both sides;
- gemv_gbps: the same weight matrices as bare matrix-vector products with the same kernels, one
  pass between every two tokens, and fraction_of_gemv_ceiling: how close decode comes to its own
  kernels (the rest is attention, norms, the exit gate and Python); the kernels' own distance from
  read_gbps is what a better kernel or fewer bytes can win;
- peak memory (RSS on CPU, allocated on CUDA) of the run itself (the read probe's buffer is not
  counted), load time and load peak / weight bytes;
- with `--quant int8|int4`, top-1 agreement of the quantized model with the unquantized one over
  fixed prompts, measured afterwards in a child process that holds one model at a time, so the
  speed run's memory peak is a user's.
Runs that are compared (`--mode both`: FAST and DEEP, `--rounds` pairs; `--quant none,int8,int4`:
one decode per mode and round) decode side by side, one token of each in turn, so a shared
machine's slow moments land on every run alike; `--mode both` reports the median DEEP/FAST
speed-up over the pairs against the target 0.85 x 4/d. `--profile` prints the share of a decoded
token's time spent in each part (see profile.py).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from lantern.runtime.generate import GenerationOptions, generate

READ_BUFFER_MB = 512
AGREEMENT_PROMPTS, AGREEMENT_PROMPT_LEN = 4, 32
PREFILL_SAMPLES = 3
"""Prefills timed per model and round when modes are compared (the decode run's own, then more with
the models' order alternating), the round's figure their median. A 1.4B prefill is one sample of a
few seconds against a decode run's dozens of tokens: with one per round, one moment of a shared
machine decided the prefill ratio (three runs of the same kernels the same evening: int4 0.89x,
1.11x, 0.94x of bf16, while the int4 prompt kernel alone ran at 1.27-1.30x of bf16's)."""


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


class ReadCeiling:
    """The machine's streaming read bandwidth: a buffer far larger than the caches, summed (a
    reduction reads each byte once and does almost no arithmetic) by 1, 2, ... up to all of this
    process's cores; the ceiling is the best of those thread counts, whatever decode itself uses."""

    def __init__(self, device: torch.device, megabytes: int = READ_BUFFER_MB) -> None:
        from lantern.runtime.threads import candidates

        self.buffer = torch.ones(megabytes * 2**20 // 4, dtype=torch.float32, device=device)
        self.bytes = self.buffer.numel() * 4
        self.device = device
        self.thread_counts = candidates() if device.type == "cpu" else [torch.get_num_threads()]

    @torch.inference_mode()
    def run_pass(self, passes: int = 3) -> float:
        """GB/s: for each thread count the median of `passes` full reads, and the best of those."""
        decode_threads = torch.get_num_threads()
        best = 0.0
        try:
            for threads in self.thread_counts:
                torch.set_num_threads(threads)
                rates = []
                for _ in range(passes):
                    _sync(self.device)
                    started = time.perf_counter()
                    self.buffer.sum()
                    _sync(self.device)
                    rates.append(self.bytes / (time.perf_counter() - started) / 1e9)
                best = max(best, statistics.median(rates))
        finally:
            torch.set_num_threads(decode_threads)
        return best


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


def token_bytes(lm, prompt_len: int, index: int, steps: int) -> int:
    """Bytes decoded token `index` (0-based, after the first) reads when it runs `steps` loop steps."""
    model, config = lm.model, lm.config
    layer_bytes = weight_bytes(model.model.layers) + weight_bytes(model.model.norm) + weight_bytes(model.model.early_exit_gate)
    kv_per_position = 2 * config.num_key_value_heads * config.head_dim * model.model.embed_tokens.weight.element_size()
    context = prompt_len + index + 1
    return steps * (layer_bytes + config.num_hidden_layers * kv_per_position * context) + weight_bytes(model.lm_head)


def timed_tokens(lm, prompt: torch.Tensor, new_tokens: int, mode: str, threshold: float) -> Iterator[tuple[Any, float]]:
    """Greedy decode (EOS ignored) as (token, seconds) pairs: the first token's seconds are the
    prefill up to it, each later one's the time from resuming the generator to its token. What the
    caller does between tokens (a ceiling probe, another model's token) is not counted."""
    opts = GenerationOptions(max_new_tokens=new_tokens, mode=mode, exit_threshold=threshold, stop_ids=set())
    _sync(lm.device)
    resumed = time.perf_counter()
    for out in generate(lm.model, None, prompt, opts):  # the next token is computed only when resumed
        _sync(lm.device)
        yield out[0], time.perf_counter() - resumed
        resumed = time.perf_counter()


class DecodeLog:
    """One decode's tokens and times, and the ceiling passes that ran between its tokens."""

    def __init__(self, lm, prompt: torch.Tensor, mode: str) -> None:
        self.lm, self.prompt, self.mode = lm, prompt, mode
        self.tokens: list[Any] = []
        self.seconds: list[float] = []
        self.gemv_rates: list[float] = []
        self.read_rates: list[float] = []

    def summary(self) -> dict[str, Any]:
        prompt_len, mode = self.prompt.shape[1], self.mode
        prefill = round(prompt_len / self.seconds[0], 2)
        decoded, per_token_seconds = self.tokens[1:], self.seconds[1:]
        if not decoded:
            return {"mode": mode, "prefill_tok_s": prefill, "decode_tok_s": None, "avg_exit_steps": None, "achieved_gbps": None}
        decode_seconds = sum(per_token_seconds)
        per_token_bytes = [token_bytes(self.lm, prompt_len, i, t.exit_step + 1) for i, t in enumerate(decoded)]
        token_gbps = [b / t / 1e9 for b, t in zip(per_token_bytes, per_token_seconds)]

        def median_fraction(ceilings: list[float]) -> float | None:
            # ceilings[i] ran just before decoded token i, so each token meets the machine of its moment
            return round(statistics.median(g / c for g, c in zip(token_gbps, ceilings)), 3) if ceilings else None

        return {
            "mode": mode,
            "prefill_tok_s": prefill,
            "decode_tok_s": round(len(decoded) / decode_seconds, 3),
            "decode_tok_s_median": round(1 / statistics.median(per_token_seconds), 3),
            "avg_exit_steps": round(sum(t.exit_step + 1 for t in decoded) / len(decoded), 3),
            "bytes_per_token": round(statistics.mean(per_token_bytes)),
            "achieved_gbps": round(sum(per_token_bytes) / decode_seconds / 1e9, 2),
            "achieved_gbps_median": round(statistics.median(token_gbps), 2),
            "read_gbps": round(statistics.median(self.read_rates), 2) if self.read_rates else None,
            "fraction_of_read_ceiling": median_fraction(self.read_rates),
            "gemv_gbps": round(statistics.median(self.gemv_rates), 2) if self.gemv_rates else None,
            "fraction_of_gemv_ceiling": median_fraction(self.gemv_rates),
        }


def side_by_side(runs: dict[str, tuple[Any, str]], prompt: torch.Tensor, new_tokens: int, threshold: float,
                 gemv: GemvCeiling | None = None, read: ReadCeiling | None = None) -> dict[str, dict[str, Any]]:
    """Decodes {name: (model, mode)} in lockstep, one token of each in turn (every run's token i
    before any run's token i + 1), and returns each run's summary. A shared machine's slow second
    then lands on a token of every run, not on one run's whole decode, so the ratios between the
    runs are measured at the same moments. With the ceilings, one pass of each runs before every
    decoded token of every run (outside the tokens' time)."""
    streams = {name: timed_tokens(lm, prompt, new_tokens, mode, threshold) for name, (lm, mode) in runs.items()}
    logs = {name: DecodeLog(lm, prompt, mode) for name, (lm, mode) in runs.items()}
    try:
        for index in range(new_tokens):
            for name, stream in streams.items():
                token, seconds = next(stream)  # no stop ids and a cache sized for new_tokens: every run yields them all
                log = logs[name]
                log.tokens.append(token)
                log.seconds.append(seconds)
                if index < new_tokens - 1:
                    if gemv is not None:
                        log.gemv_rates.append(gemv.run_pass())
                    if read is not None:
                        log.read_rates.append(read.run_pass())
    finally:
        for stream in streams.values():
            stream.close()
    return {name: log.summary() for name, log in logs.items()}


def decode_run(lm, prompt: torch.Tensor, new_tokens: int, mode: str, threshold: float, gemv: GemvCeiling | None = None,
               read: ReadCeiling | None = None) -> dict[str, Any]:
    """One greedy decode, timing every token; with the ceilings, one pass of each between tokens."""
    return side_by_side({mode: (lm, mode)}, prompt, new_tokens, threshold, gemv, read)[mode]


def prefill_tok_s(lm, prompt: torch.Tensor, mode: str, threshold: float) -> float:
    """Prompt tokens per second up to the first generated token, as decode_run times its prefill."""
    opts = GenerationOptions(max_new_tokens=1, mode=mode, exit_threshold=threshold, stop_ids=set())
    _sync(lm.device)
    started = time.perf_counter()
    for _ in generate(lm.model, None, prompt, opts):
        break
    _sync(lm.device)
    return round(prompt.shape[1] / (time.perf_counter() - started), 2)


def fixed_prompts(vocab_size: int, count: int = AGREEMENT_PROMPTS, length: int = AGREEMENT_PROMPT_LEN, seed: int = 1) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(3, min(vocab_size, 4096), (1, length), generator=gen) for _ in range(count)]


def final_step_logits(path, device: str, dtype: str, quant: str) -> list[torch.Tensor]:
    """Last-loop-step logits of the fixed prompts from one model, loaded, used and dropped."""
    from lantern.runtime.loader import load

    lm = load(path, device=device, dtype=dtype, quant=quant)
    out = [lm.step_logits(ids)[0][-1].float().cpu() for ids in fixed_prompts(lm.config.vocab_size)]
    del lm
    return out


def compare_logits(reference: list[torch.Tensor], other: list[torch.Tensor]) -> tuple[float, float]:
    """(top-1 agreement over every prompt position, mean relative error of the logits)."""
    agree = sum(int((a.argmax(-1) == b.argmax(-1)).sum()) for a, b in zip(reference, other))
    total = sum(a.argmax(-1).numel() for a in reference)
    errors = [float((a - b).norm() / a.norm()) for a, b in zip(reference, other)]
    return round(agree / total, 4), round(sum(errors) / len(errors), 4)


def agreement(path, device: str, dtype: str, quant: str, threads: int = 0) -> dict[str, Any]:
    """Top-1 agreement of `quant` with the unquantized model (and, as the noise floor, of `dtype`
    with float32). One model is held at a time: a bf16 and a float32 1.4B together would be 8.6 GB."""
    from lantern.runtime.loader import uses_native_kernels
    from lantern.runtime.threads import use_threads

    use_threads(threads, native=uses_native_kernels(device, dtype))
    plain = final_step_logits(path, device, dtype, "none")
    quantized = final_step_logits(path, device, dtype, quant)
    top1, error = compare_logits(plain, quantized)
    result = {f"{quant}_top1_agreement": top1, f"{quant}_logits_rel_error": error}
    if dtype != "float32":
        # The noise floor: how much plain bf16 rounding alone moves the same logits (vs float32).
        # Random weights make the 96 layer applications chaotic, so both numbers are pessimistic.
        top1, error = compare_logits(final_step_logits(path, device, "float32", "none"), plain)
        result |= {f"{dtype}_vs_float32_top1_agreement": top1, f"{dtype}_vs_float32_logits_rel_error": error}
    return result | {"agreement_peak_mem_mb": round(peak_rss_mb(), 1)}


def agreement_in_child(path, device: str, dtype: str, quant: str, threads: int = 0) -> dict[str, Any]:
    """`agreement` in a separate process, so the speed run never holds the unquantized copies."""
    code = ("import json, sys; from lantern.runtime.bench import agreement; "
            f"print(json.dumps(agreement({str(path)!r}, {device!r}, {dtype!r}, {quant!r}, {threads!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        return {"agreement_error": (done.stderr.strip().splitlines() or ["agreement step failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(model: str | None, shape: str | None, prompt_len: int, new_tokens: int, mode: str, quant: str, gate_bias: float,
        threshold: float, device: str, dtype: str, home: Path, threads: int | None = None, rounds: int = 3,
        profile: bool = False, agreement_check: bool = True) -> dict[str, Any]:
    """One benchmark run; `quant` may list several modes ("none,int8,int4"): see `compare_quant`."""
    from lantern.runtime.loader import load, resolve_device, uses_native_kernels
    from lantern.runtime.threads import use_threads

    chosen_threads = use_threads(threads or 0, native=uses_native_kernels(device, dtype))
    path = random_checkpoint_dir(home, shape) if shape else model
    if "," in quant:
        return compare_quant(path, shape, prompt_len, new_tokens, mode, quant.split(","), gate_bias, threshold, device, dtype,
                             chosen_threads, rounds, agreement_check)
    from transformers import PreTrainedTokenizerFast  # noqa: F401  (import cost is not load cost)

    rss_before = peak_rss_mb()
    started = time.perf_counter()
    lm = load(path, device=device, dtype=dtype, quant=quant)
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
    gemv = GemvCeiling(lm.model, dev)
    gemv.run_pass()
    peak_before_probe = peak_rss_mb()
    read = ReadCeiling(dev)
    read.run_pass()
    result: dict[str, Any] = {
        "model": str(path), "shape": shape, "dtype": dtype, "quant": quant, "device": _device_name(dev),
        "threads": chosen_threads, "threads_setting": threads or "measured", "prompt_len": prompt_len, "new_tokens": new_tokens,
        "gate_bias": gate_bias, "exit_threshold": threshold, "weight_gb": round(weights / 1e9, 3), "load_seconds": round(load_seconds, 2),
        "load_peak_over_weights": round(load_peak * 2**20 / weights, 3) if dev.type == "cpu" else None,
    }
    modes = ["fast", "deep"] if mode == "both" else [mode]
    runs = side_by_side({m: (lm, m) for m in modes}, prompt, new_tokens, threshold, gemv, read)
    speedups = []
    if mode == "both":
        # A shared machine drifts, so the ratio comes from pairs of FAST and DEEP decodes run token by token side by side.
        speedups.append(runs["deep"]["decode_tok_s"] / runs["fast"]["decode_tok_s"])
        for _ in range(rounds - 1):
            pair = side_by_side({m: (lm, m) for m in modes}, prompt, new_tokens, threshold)
            speedups.append(pair["deep"]["decode_tok_s"] / pair["fast"]["decode_tok_s"])
    result["gemv_gbps"] = statistics.median(r["gemv_gbps"] for r in runs.values() if r["gemv_gbps"])
    result["read_gbps"] = statistics.median(r["read_gbps"] for r in runs.values() if r["read_gbps"])
    if mode == "both":
        result["runs"] = runs
        d = runs["deep"]["avg_exit_steps"]
        result["deep_speedup"] = round(statistics.median(speedups), 3)
        result["deep_speedup_each_pair"] = [round(x, 3) for x in speedups]
        result["deep_speedup_target"] = round(0.85 * lm.config.num_steps / d, 3)
    else:
        result |= runs[mode]
    if profile:
        from lantern.runtime.profile import profile_decode

        result["profile"] = profile_decode(lm, prompt, min(new_tokens, 8), "fast" if mode == "both" else mode, threshold)
    if dev.type == "cpu":
        # The read probe's buffer stays resident from its allocation on, so it is taken back out.
        result["peak_mem_mb"] = round(max(peak_before_probe, peak_rss_mb() - read.bytes / 2**20), 1)
    else:
        result["peak_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    del read, gemv, lm
    if quant != "none" and agreement_check:
        result |= agreement_in_child(path, device, dtype, quant, chosen_threads)
    return result


def compare_quant(path, shape: str | None, prompt_len: int, new_tokens: int, mode: str, quants: list[str], gate_bias: float,
                  threshold: float, device: str, dtype: str, threads: int, rounds: int, agreement_check: bool) -> dict[str, Any]:
    """Several quantization modes side by side in one process: every model is loaded, then each
    round decodes once with each, token by token in lockstep (side_by_side), and times
    PREFILL_SAMPLES prefills of each, alternating (the ratios are medians of per-round ratios to the
    first mode, so a shared machine's drift hits all of them). The memory peak here is all models
    together; a user's is in a single-mode run."""
    from lantern.runtime.loader import load, resolve_device

    if mode == "both":
        raise ValueError("compare quantization modes with --mode fast or --mode deep (run --mode both per mode)")
    dev = resolve_device(device)
    models = {}
    for quant in quants:
        models[quant] = load(path, device=device, dtype=dtype, quant=quant)
        if gate_bias:
            with torch.no_grad():
                models[quant].model.model.early_exit_gate.bias += gate_bias
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(3, min(models[quants[0]].config.vocab_size, 4096), (1, prompt_len), generator=gen).to(dev)
    for lm in models.values():
        decode_run(lm, prompt[:, :8], 3, "fast", threshold)  # warm-up
    read = ReadCeiling(dev)
    per_round: dict[str, list[dict[str, Any]]] = {q: [] for q in quants}
    for _ in range(rounds):
        decoded = side_by_side({quant: (lm, mode) for quant, lm in models.items()}, prompt, new_tokens, threshold, None, read)
        for quant in quants:
            per_round[quant].append(decoded[quant])
        samples = {quant: [per_round[quant][-1]["prefill_tok_s"]] for quant in quants}
        for extra in range(PREFILL_SAMPLES - 1):
            for quant in (reversed(quants) if extra % 2 == 0 else quants):
                samples[quant].append(prefill_tok_s(models[quant], prompt, mode, threshold))
        for quant in quants:
            per_round[quant][-1]["prefill_samples_tok_s"] = samples[quant]
            per_round[quant][-1]["prefill_tok_s"] = round(statistics.median(samples[quant]), 2)
    base = quants[0]
    result: dict[str, Any] = {"model": str(path), "shape": shape, "dtype": dtype, "quant": ",".join(quants), "device": _device_name(dev),
                              "threads": threads, "prompt_len": prompt_len, "new_tokens": new_tokens, "mode": mode, "rounds": rounds,
                              "gate_bias": gate_bias, "by_quant": {}}
    for quant, runs in per_round.items():
        row = {key: round(statistics.median(r[key] for r in runs), 3)
               for key in ("decode_tok_s", "prefill_tok_s", "avg_exit_steps", "achieved_gbps", "read_gbps", "fraction_of_read_ceiling")}
        row["bytes_per_token"] = runs[0]["bytes_per_token"]
        row["weight_gb"] = round(weight_bytes(models[quant].model) / 1e9, 3)
        if quant != base:
            row["decode_speedup"] = round(statistics.median(r["decode_tok_s"] / b["decode_tok_s"] for r, b in zip(runs, per_round[base])), 3)
            row["prefill_speedup"] = round(statistics.median(r["prefill_tok_s"] / b["prefill_tok_s"] for r, b in zip(runs, per_round[base])), 3)
            row["decode_speedup_each_round"] = [round(r["decode_tok_s"] / b["decode_tok_s"], 3) for r, b in zip(runs, per_round[base])]
            row["prefill_speedup_each_round"] = [round(r["prefill_tok_s"] / b["prefill_tok_s"], 3) for r, b in zip(runs, per_round[base])]
        row["prefill_samples_tok_s"] = [r["prefill_samples_tok_s"] for r in runs]
        result["by_quant"][quant] = row
    result["peak_mem_mb_all_models"] = round(peak_rss_mb() - read.bytes / 2**20, 1) if dev.type == "cpu" else None
    del read, models
    if agreement_check:
        for quant in quants:
            if quant != "none":
                result["by_quant"][quant] |= agreement_in_child(path, device, dtype, quant, threads)
    return result


def summary(result: dict[str, Any]) -> list[str]:
    """The human-readable lines of a result (the --json output carries everything)."""
    lines = [f"{result['model']}  {result['dtype']}, quant {result['quant']}, {result['device']}, {result['threads']} thread(s), "
             f"prompt {result['prompt_len']}, {result['new_tokens']} new tokens"]
    if "by_quant" in result:
        lines.append(f"{result['mode'].upper()}, medians of {result['rounds']} rounds, each round every mode once:")
        for quant, row in result["by_quant"].items():
            ratio = f" = {row['decode_speedup']:.2f}x decode, {row['prefill_speedup']:.2f}x prefill" if "decode_speedup" in row else ""
            agree = f"; top-1 agreement {row[f'{quant}_top1_agreement']:.3f}" if f"{quant}_top1_agreement" in row else ""
            lines.append(f"  {quant:5} decode {row['decode_tok_s']:.2f} tok/s, prefill {row['prefill_tok_s']:.1f} tok/s{ratio}; "
                         f"{row['bytes_per_token'] / 1e9:.2f} GB/token, {row['fraction_of_read_ceiling']:.2f} of the read ceiling "
                         f"({row['read_gbps']:.1f} GB/s){agree}")
        return lines
    runs = result.get("runs") or {result["mode"]: result}
    for name, r in runs.items():
        if r.get("decode_tok_s") is None:
            lines.append(f"{name.upper():4}  prefill {r['prefill_tok_s']} tok/s; too few tokens to time decode")
            continue
        lines.append(
            f"{name.upper():4}  decode {r['decode_tok_s']:.2f} tok/s (median token {r['decode_tok_s_median']:.2f}), "
            f"{r['avg_exit_steps']:.2f} loop steps/token, prefill {r['prefill_tok_s']:.1f} tok/s")
        lines.append(
            f"      {r['bytes_per_token'] / 1e9:.2f} GB read per token: {r['achieved_gbps']:.1f} GB/s = "
            f"{r['fraction_of_read_ceiling']:.2f} of the read ceiling ({r['read_gbps']:.1f} GB/s), "
            f"{r['fraction_of_gemv_ceiling']:.2f} of the GEMV kernels' ({r['gemv_gbps']:.1f} GB/s)")
    if "deep_speedup" in result:
        lines.append(f"DEEP/FAST {result['deep_speedup']:.2f}x (pairs {result['deep_speedup_each_pair']}), target {result['deep_speedup_target']:.2f}x")
    lines.append(f"weights {result['weight_gb']:.2f} GB, loaded in {result['load_seconds']:.1f} s, peak memory {result['peak_mem_mb'] / 1024:.2f} GB")
    quant = result["quant"]
    if f"{quant}_top1_agreement" in result:
        lines.append(f"{quant} top-1 agreement with unquantized {result[f'{quant}_top1_agreement']:.3f} "
                     f"(logit rel. error {result[f'{quant}_logits_rel_error']:.3f}); measured in a separate process")
    if "agreement_error" in result:
        lines.append(f"agreement step failed: {result['agreement_error']}")
    if "profile" in result:
        from lantern.runtime.profile import profile_table

        lines += profile_table(result["profile"])
    return lines


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {os.cpu_count()} cores"
