"""The native Ouro LoopLM as a reasoner: DEEP (adaptive depth) or FAST, streamed token by token.

Each token comes with the loop step it exited at. One loaded model per process (`loaded`), shared
by every caller: loading is done once under a lock, and generation and judging hold the model's
own lock, so concurrent answers take turns instead of loading or running the model twice.
Cancellation is checked after every token, so a cancelled answer stops within one token.

This module knows nothing about retrieval or verification.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Iterator

import numpy as np

from lantern.backends.text_stream import Piece, ReaderStream
from lantern.loop.reason import build_messages
from lantern.prompts import load_prompts
from lantern.records import Draft, Evidence, Question

_loading = threading.Lock()


def loaded(path: str, device: str, dtype: str, quant: str, threads: int = 0):
    """The one loaded LoopLM for these arguments in this process (a chat or a server asks many questions)."""
    with _loading:
        return _load(path, device, dtype, quant, threads)


@functools.lru_cache(maxsize=1)
def _load(path: str, device: str, dtype: str, quant: str, threads: int):
    from lantern.runtime import load
    from lantern.runtime.loader import uses_native_kernels
    from lantern.runtime.threads import use_threads

    use_threads(threads, native=uses_native_kernels(device, dtype))
    lm = load(path, device=device, dtype=dtype, quant=quant)
    lm.lock = threading.RLock()
    return lm


def model_lock(lm) -> threading.RLock:
    """The lock every user of `lm` holds while it computes (set at load; created for models loaded elsewhere)."""
    with _loading:
        if getattr(lm, "lock", None) is None:
            lm.lock = threading.RLock()
        return lm.lock


class OuroReasoner:
    backend = "ouro"
    rewrites = True
    uses_tools = True

    def __init__(self, lm, settings, prompts: dict[str, Any] | None = None, name: str | None = None) -> None:
        self.lm = lm
        self.settings = settings
        self.prompts = prompts or load_prompts("answer", settings.prompts_dir)
        self.name = name or getattr(lm, "name", settings.model)
        self.lock = model_lock(lm)

    def judge(self, template: str, exit_threshold: float):
        from lantern.verify.judge import LoopLMJudge

        judge = LoopLMJudge(self.lm, template, exit_threshold)
        lock = self.lock

        def locked(claim: str, evidence: str) -> float:
            with lock:
                return judge(claim, evidence)

        return locked

    def stream(self, question: Question, evidence: list[Evidence], feedback: list[str] | None = None,
               tools: list[dict[str, Any]] | None = None, cancel: threading.Event | None = None) -> Iterator[Piece | Draft]:
        input_ids = self.lm.chat_ids(build_messages(self.prompts, question, evidence, feedback, tools))
        opening = self.lm.tokenizer.decode(input_ids[0, -4:].tolist())
        reader = ReaderStream(self.prompts["tool_call_prefix"], thinking_first=opening.rstrip().endswith("<think>"))
        steps: list[int] = []
        cancelled = False
        with self.lock:
            tokens = self.lm.generate(input_ids, max_new_tokens=self.settings.max_new_tokens, mode=self.settings.mode,
                                      exit_threshold=self.settings.exit_threshold, temperature=self.settings.temperature)
            try:
                for token in tokens:
                    steps.append(token.exit_step + 1)
                    yield from reader.feed(token.text, token.exit_step + 1)
                    if cancel is not None and cancel.is_set():
                        cancelled = True
                        break
            finally:
                tokens.close()
        yield from reader.finish()
        text, thinking, calls, rejected = reader.result()
        yield Draft(text=text, thinking=thinking, tool_calls=[] if cancelled else calls, rejected_calls=[] if cancelled else rejected,
                    model=self.name, avg_exit_steps=float(np.mean(steps)) if steps else None, tokens=len(steps), cancelled=cancelled)
