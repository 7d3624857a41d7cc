"""One loaded LoopLM serving many raw generation requests: a queue and batched decode.

Requests wait in one queue. A scheduler thread takes every waiting request whose sampling
options match the first one's (the runtime's options are batch-wide; see `Sampling.batch_key`),
up to `max_batch`, and decodes them together with the runtime's left-padded batch `generate`,
holding the model's lock (the grounded answer loop takes turns with it). Each request gets its
own tokens as they are made, through its own asyncio queue, with its exit step; its own
`max_new_tokens` and stop strings end it early (the batch runs on for the others); a request
whose client went away is cancelled and the batch stops as soon as nobody is listening.
Requests that arrive while a batch runs form the next batch; the first request of an idle server
waits `GATHER_SECONDS` for others sent at the same moment.

This module knows nothing about HTTP or API shapes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

import torch

from lantern.serve.requests import Sampling

log = logging.getLogger(__name__)
GATHER_SECONDS = 0.02
"""How long the scheduler waits, once a request is in, for others to join its batch."""


@dataclass
class Piece:
    text: str
    exit_step: int  # 1-based


@dataclass
class Done:
    reason: str  # "stop" or "length" (or "cancelled")
    prompt_tokens: int
    tokens: int
    exit_steps: list[int]
    prompt_seconds: float
    seconds: float


@dataclass
class Job:
    ids: list[int]
    sampling: Sampling
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    steps: list[int] = field(default_factory=list)
    finished: bool = False

    def send(self, item) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class Batcher:
    def __init__(self, lm, max_batch: int = 32) -> None:
        from lantern.backends.ouro import model_lock

        self.lm = lm
        self.lock = model_lock(lm)
        self.max_batch = max_batch
        self._waiting: list[Job] = []
        self._wake = threading.Condition()
        threading.Thread(target=self._run, name="lantern-batcher", daemon=True).start()

    def submit(self, ids: list[int], sampling: Sampling) -> Job:
        job = Job(ids, sampling, asyncio.get_running_loop())
        with self._wake:
            self._waiting.append(job)
            self._wake.notify()
        return job

    # --- the scheduler thread ------------------------------------------------------------------------
    def _next_batch(self) -> list[Job]:
        with self._wake:
            while not self._waiting:
                self._wake.wait()
            # Requests sent together arrive a few milliseconds apart: wait that long for the rest,
            # or the first one decodes alone and the others wait a whole generation for it.
            deadline = time.monotonic() + GATHER_SECONDS
            while len(self._waiting) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                self._wake.wait(left)
            key = self._waiting[0].sampling.batch_key()
            batch = [job for job in self._waiting if job.sampling.batch_key() == key][: self.max_batch]
            self._waiting = [job for job in self._waiting if job not in batch]
        return [job for job in batch if not job.cancelled.is_set()]

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                continue
            try:
                with self.lock:
                    self._decode(batch)
            except Exception as exc:  # one bad batch must not stop the server
                log.exception("batch of %d failed", len(batch))
                for job in batch:
                    if not job.finished:
                        job.finished = True
                        job.send(exc)

    def _decode(self, batch: list[Job]) -> None:
        from lantern.runtime.generate import GenerationOptions, generate

        s = batch[0].sampling
        width = max(len(job.ids) for job in batch)
        pad = self.lm.config.pad_token_id
        device = self.lm.device
        ids = torch.tensor([[pad] * (width - len(j.ids)) + j.ids for j in batch], dtype=torch.long, device=device)
        mask = None if len(batch) == 1 else torch.tensor([[0] * (width - len(j.ids)) + [1] * len(j.ids) for j in batch], device=device)
        opts = GenerationOptions(max_new_tokens=max(j.sampling.max_new_tokens for j in batch), mode=s.mode, temperature=s.temperature,
                                 top_p=s.top_p, top_k=s.top_k, repetition_penalty=s.repetition_penalty, seed=s.seed,
                                 stop_ids=set(self.lm.stop_ids))
        started = time.perf_counter()
        first: float | None = None
        steps = generate(self.lm.model, self.lm.tokenizer, ids, opts, attention_mask=mask)
        try:
            for tokens in steps:
                first = first or time.perf_counter() - started
                for job, token in zip(batch, tokens):
                    if not job.finished:
                        self._deliver(job, token, started, first)
                if all(job.finished or job.cancelled.is_set() for job in batch):
                    break
        finally:
            steps.close()
        for job in batch:  # sequences the runtime ended (EOS) without a word from us
            if not job.finished:
                self._finish(job, "cancelled" if job.cancelled.is_set() else "stop", started, first)

    def _deliver(self, job: Job, token, started: float, first: float | None) -> None:
        if job.cancelled.is_set():
            return self._finish(job, "cancelled", started, first)
        if token is None or token.id in self.lm.stop_ids:
            return self._finish(job, "stop", started, first)
        job.steps.append(token.exit_step + 1)
        piece = token.text
        stop_at = _first_stop(job.text, piece, job.sampling.stop)
        if stop_at is not None:  # the text up to the stop string is sent; the stop string is not
            piece = piece[:stop_at]
        job.text += piece
        if piece:
            job.send(Piece(piece, token.exit_step + 1))
        if stop_at is not None:
            return self._finish(job, "stop", started, first)
        if len(job.steps) >= job.sampling.max_new_tokens:
            self._finish(job, "length", started, first)

    def _finish(self, job: Job, reason: str, started: float, first: float | None) -> None:
        if reason == "cancelled":
            log.info("request cancelled after %d tokens (its client went away)", len(job.steps))
        job.finished = True
        job.send(Done(reason, len(job.ids), len(job.steps), list(job.steps), first or 0.0, time.perf_counter() - started))


def _first_stop(before: str, piece: str, stops: list[str]) -> int | None:
    """Where in `piece` the earliest stop string that ends in it begins (relative to `piece`), or None."""
    text = before + piece
    hits = []
    for stop in stops:
        at = text.find(stop, max(0, len(before) - len(stop) + 1))
        if stop and at >= 0:
            hits.append(at)
    # A stop string that began in text already sent can only be cut from here on.
    return max(0, min(hits) - len(before)) if hits else None
