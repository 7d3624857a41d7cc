"""Generation: prefill, then token-by-token decode with real early exit, sampling and stopping.

Prefill runs every loop step for all prompt tokens, filling every cache slot; the first new token
is decoded from the last prompt position's Q-exit step (DEEP) or the last step (FAST). Each decode
step embeds the new token and runs loop steps one at a time: in DEEP mode it stops at the step where
the Q-exit rule fires (the compute saving), then gives the skipped steps' cache slots that step's
keys/values ("last exited"); in FAST mode it always runs all T steps. Batches (B > 1) use left
padding; a batch keeps looping while any of its sequences still does.

This module knows nothing about checkpoints or files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

from lantern.runtime.cache import StaticKVCache
from lantern.runtime.exit import cumulative_exit, exit_step, exits_now
from lantern.runtime.model import OuroForCausalLM, positions_and_mask


@dataclass
class GeneratedToken:
    id: int
    text: str
    exit_step: int
    """0-based loop step at which the forward pass that produced this token stopped."""
    seconds: float
    """Time since the previous token of this sequence (the first one includes prefill)."""
    sequence: int = 0


@dataclass
class GenerationOptions:
    max_new_tokens: int = 64
    mode: str = "deep"
    exit_threshold: float = 0.5
    min_steps: int = 1
    max_steps: int | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop_ids: set[int] = field(default_factory=set)
    stop_strings: list[str] = field(default_factory=list)


def sample(logits: torch.Tensor, history: list[list[int]], opts: GenerationOptions, rng: torch.Generator | None) -> torch.Tensor:
    """logits [B, V] fp32 -> next token ids [B]."""
    logits = logits.clone()
    if opts.repetition_penalty != 1.0:
        for b, seen in enumerate(history):
            if seen:
                index = torch.tensor(sorted(set(seen)), device=logits.device)
                values = logits[b, index]
                logits[b, index] = torch.where(values > 0, values / opts.repetition_penalty, values * opts.repetition_penalty)
    if opts.temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / opts.temperature
    if opts.top_k > 0:
        kth = torch.topk(logits, min(opts.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if opts.top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(ordered, dim=-1)
        drop = probs.cumsum(dim=-1) - probs > opts.top_p  # keep the smallest prefix reaching top_p
        ordered = ordered.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, ordered)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=rng).squeeze(-1)


MAX_HELD_TOKENS = 4
"""A UTF-8 character is at most 4 bytes, so at most 4 byte tokens: a tail still undecodable after
that many is invalid bytes (a random or broken model repeating a lead byte), not a character in
the making, and is released as replacement characters instead of being held for ever."""


class Decoder:
    """Turns token ids into text incrementally, holding back incomplete UTF-8 sequences.

    Each push decodes only a short window, the previous piece's tokens plus the new ones (the
    context a tokenizer needs to get spaces and merged bytes right at the seam), so a long answer
    costs O(n), not the O(n^2) of re-decoding everything per token. `full_text` is the reference.
    """

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0  # start of the context window
        self.read_offset = 0  # tokens before this are already turned into text
        self.text = ""  # everything pushed so far, as text

    def tail(self, chars: int) -> str:
        return self.text[-chars:] if chars else ""

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        if self.tokenizer is None:
            return ""
        seen = self.tokenizer.decode(self.ids[self.prefix_offset : self.read_offset], skip_special_tokens=True)
        window = self.tokenizer.decode(self.ids[self.prefix_offset :], skip_special_tokens=True)
        if len(window) <= len(seen):
            return ""  # nothing printable yet: a special token
        if window.endswith("\ufffd") and len(self.ids) - self.read_offset < MAX_HELD_TOKENS:
            return ""  # perhaps half of a multi-byte character; past MAX_HELD_TOKENS it is broken bytes, shown as such
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        piece = window[len(seen) :]
        self.text += piece
        return piece

    def full_text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True) if self.tokenizer else ""


@torch.inference_mode()
def generate(model: OuroForCausalLM, tokenizer, input_ids: torch.Tensor, opts: GenerationOptions,
             attention_mask: torch.Tensor | None = None) -> Iterator[list[GeneratedToken | None]]:
    """Yield, per decode position, one GeneratedToken (or None once finished) per sequence."""
    config = model.config
    steps, layers = config.num_steps, config.num_hidden_layers
    batch, prompt_len = input_ids.shape
    device = input_ids.device
    dtype = model.model.embed_tokens.weight.dtype
    deep = opts.mode == "deep"
    rng = torch.Generator(device=device).manual_seed(opts.seed) if opts.seed is not None else None
    cache = StaticKVCache(steps, layers, batch, config.num_key_value_heads, prompt_len + opts.max_new_tokens, config.head_dim, dtype, device)
    started = time.perf_counter()

    # Prefill: every step, every prompt position.
    positions, mask = positions_and_mask(input_ids, attention_mask)
    h = model.embed(input_ids)
    cos, sin = model.rope(positions, dtype)
    last_hidden, last_gates = [], []
    for step in range(steps):
        h, gate = model.loop_step(h, step, cos, sin, mask, cache, 0)
        last_hidden.append(h[:, -1])
        last_gates.append(gate[:, -1])
    gates = torch.stack(last_gates, dim=-1)  # [B, T]
    exits = exit_step(gates, opts.exit_threshold, opts.min_steps, opts.max_steps) if deep else torch.full((batch,), steps - 1, device=device)
    hidden = torch.stack(last_hidden)[exits, torch.arange(batch, device=device)]  # [B, hidden]
    logits = model.logits(hidden)

    past_mask = attention_mask if attention_mask is not None else None
    next_position = positions[:, -1] + 1
    decoders = [Decoder(tokenizer) for _ in range(batch)]
    stop_window = max((len(stop) for stop in opts.stop_strings), default=0)
    history: list[list[int]] = [[] for _ in range(batch)]
    finished = [False] * batch
    last_time = [started] * batch
    for index in range(opts.max_new_tokens):
        token_ids = sample(logits, history, opts, rng)
        now = time.perf_counter()
        out: list[GeneratedToken | None] = []
        for b in range(batch):
            if finished[b]:
                out.append(None)
                continue
            tid = int(token_ids[b])
            history[b].append(tid)
            piece = decoders[b].push(tid)
            out.append(GeneratedToken(tid, piece, int(exits[b]), now - last_time[b], b))
            last_time[b] = now
            recent = decoders[b].tail(stop_window + len(piece))  # a stop string can only end in the new piece
            if tid in opts.stop_ids or any(stop in recent for stop in opts.stop_strings):
                finished[b] = True
        yield out
        if all(finished) or index == opts.max_new_tokens - 1:
            return
        exits, logits = _decode_one(model, cache, token_ids, next_position, prompt_len + index, past_mask, opts, deep)
        if past_mask is not None:
            past_mask = torch.cat([past_mask, torch.ones(batch, 1, dtype=past_mask.dtype, device=device)], dim=1)
        next_position = next_position + 1


def _decode_one(model, cache: StaticKVCache, token_ids, positions, column: int, past_mask, opts: GenerationOptions, deep: bool):
    """Run the loop for one new token per sequence at cache column `column`; returns (exit steps, logits)."""
    steps = model.config.num_steps
    batch = token_ids.shape[0]
    device = token_ids.device
    h = model.embed(token_ids[:, None])
    cos, sin = model.rope(positions[:, None], h.dtype)
    mask = None
    if past_mask is not None:
        valid = torch.cat([past_mask, torch.ones(batch, 1, dtype=past_mask.dtype, device=device)], dim=1).bool()
        mask = valid[:, None, None, :]
    exits = torch.full((batch,), steps - 1, dtype=torch.long, device=device)
    hidden = torch.empty(batch, h.shape[-1], dtype=h.dtype, device=device)
    active = torch.ones(batch, dtype=torch.bool, device=device)
    gates = []
    for step in range(steps):
        h, gate = model.loop_step(h, step, cos, sin, mask, cache, column)
        gates.append(gate[:, 0])
        if deep:
            stop = exits_now(cumulative_exit(torch.stack(gates, dim=-1)), step, steps, opts.exit_threshold, opts.min_steps, opts.max_steps) & active
        else:
            stop = active if step == steps - 1 else torch.zeros_like(active)
        if bool(stop.any()):
            exits[stop] = step
            hidden[stop] = h[stop, 0]
            active &= ~stop
        if not bool(active.any()):
            break  # every sequence has exited: the deeper steps are never computed
    if deep and bool((exits < steps - 1).any()):
        cache.fill_skipped_steps(exits, column)
    return exits, model.logits(hidden)
