"""How many CPU threads the runtime's kernels use: a number from the `threads` setting, or chosen
by measurement at load time.

Batch-1 decode is a long chain of small, memory-bound matrix-vector products, each split over the
threads with a barrier at its end. On a shared machine a thread that loses its core stalls every
barrier: on the 2-core development machine with another process busy, 2 threads ran the same
products 3-10x slower than 1, while on an idle machine 2 threads read memory faster than 1. No
fixed number is right for both, so `threads = 0` (the default) times a short run of the decode's
own kind of work (bf16 matrix-vector products over a weight larger than the caches, with the native
kernel where it is built) at each
candidate count and keeps the fastest, preferring fewer threads unless more are clearly faster.

This module knows nothing about models; it only sets torch's intra-op thread count (the native
kernels share PyTorch's thread pool).
"""

from __future__ import annotations

import os
import statistics
import time

import torch

CLEARLY_FASTER = 1.12
"""More threads must beat fewer by this factor to be chosen. The stakes are lopsided: on the
development machine 2 threads were 3-10x slower than 1 for decode-sized products when another
process took a core, so a narrow win goes to fewer. But idle, 2 threads were only about 1.3x faster
(twelve measurements in a row, 2026-12-03: 1.15-1.88x, median 1.33x), so the 1.25 used before
chose 1 thread in 2 of those 12, and a whole benchmark run once ran bf16 decode on 1 thread at 0.64
of the read ceiling; 1.12 still refuses every contended measurement seen."""


def candidates() -> list[int]:
    """Thread counts worth trying: 1, 2, 4, ... up to the cores this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    counts, n = [], 1
    while n < cores:
        counts.append(n)
        n *= 2
    return counts + [cores]


def measure(counts: list[int], rounds: int = 5, megabytes: int = 96, passes: int = 2, native: bool = False) -> dict[int, float]:
    """Seconds per pass of bf16 matrix-vector products over `megabytes` of weights (8 MB each, a
    decode projection's size), per thread count: the median of `rounds` timings of `passes`
    passes, the counts interleaved so a change in the machine's load hits all of them; `native`: with
    Lantern's native kernel where it builds (what a bf16 CPU model decodes with), else PyTorch's."""
    blocks = [torch.randn(2048, 2048).to(torch.bfloat16) for _ in range(max(megabytes // 8, 1))]
    x = torch.randn(1, 2048, dtype=torch.bfloat16)
    product = _decode_product(native)
    before = torch.get_num_threads()
    seconds: dict[int, list[float]] = {n: [] for n in counts}
    try:
        for _ in range(rounds):
            for n in counts:
                torch.set_num_threads(n)
                product(x, blocks[0])  # wake the pool at this size
                started = time.perf_counter()
                for _ in range(passes):
                    for block in blocks:
                        product(x, block)
                seconds[n].append((time.perf_counter() - started) / passes)
    finally:
        torch.set_num_threads(before)
    return {n: statistics.median(s) for n, s in seconds.items()}


def _decode_product(native: bool):
    """The matrix-vector product decode will run: the native bf16 kernel when asked for and built (it
    reads memory about three times faster than PyTorch's, so the two kernels can favour different
    thread counts), else PyTorch's."""
    from lantern.runtime import kernels

    if native and kernels.native() is not None:
        return lambda x, weight: kernels.gemv_bf16(x[0], weight)
    return torch.nn.functional.linear


def choose(timings: dict[int, float]) -> int:
    """The fewest threads within CLEARLY_FASTER of the fastest count."""
    best = min(timings.values())
    return min(n for n, t in timings.items() if t <= best * CLEARLY_FASTER)


def use_threads(threads: int = 0, native: bool = False) -> int:
    """Set torch's thread count: `threads` when positive, else the measured choice (timed with the
    native kernel when `native`: the model will run it). Returns it."""
    if threads <= 0:
        counts = candidates()
        threads = counts[0] if len(counts) == 1 else choose(measure(counts, native=native))
    torch.set_num_threads(threads)
    return threads
