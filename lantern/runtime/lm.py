"""LoopLM: the loaded model, its tokenizer and the public calls the rest of Lantern uses.

    lm = load("ouro-1.4b")                      # lantern.runtime.load
    logits, gates = lm.step_logits(ids)         # [T, B, S, V], [T, B, S]
    for tok in lm.generate(ids, mode="deep"):   # streamed GeneratedToken(id, text, exit_step, seconds)
        ...
    lm.generate_batch(["a", "b"])               # left-padded batch -> list of token lists
    lm.chat_ids(messages)                       # thinking and answer are told apart by lantern.backends.text_stream
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch

from lantern.runtime.config import OuroConfig
from lantern.runtime.generate import GeneratedToken, GenerationOptions, generate
from lantern.runtime.model import OuroForCausalLM



class LoopLM:
    quant = "none"
    """Weight quantization the loader applied: none, int8 or int4."""

    def __init__(self, model: OuroForCausalLM, tokenizer, config: OuroConfig, name: str, stop_ids: set[int], snapshot: Path | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.name = name
        self.stop_ids = stop_ids
        self.snapshot = snapshot

    @property
    def num_steps(self) -> int:
        return self.config.num_steps

    @property
    def device(self) -> torch.device:
        return self.model.model.embed_tokens.weight.device

    def step_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.step_logits(input_ids.to(self.device), None if attention_mask is None else attention_mask.to(self.device))

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.tokenizer.encode(text, add_special_tokens=False)], dtype=torch.long)

    def chat_ids(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> torch.Tensor:
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return torch.tensor([list(ids)], dtype=torch.long)

    def _options(self, max_new_tokens: int, stop: list[str] | None, **kwargs) -> GenerationOptions:
        return GenerationOptions(max_new_tokens=max_new_tokens, stop_ids=set(self.stop_ids), stop_strings=list(stop or []), **kwargs)

    def generate(self, input_ids: torch.Tensor | str, max_new_tokens: int = 64, mode: str = "deep", exit_threshold: float = 0.5,
                 temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, repetition_penalty: float = 1.0,
                 seed: int | None = None, stop: list[str] | None = None, min_steps: int = 1, max_steps: int | None = None) -> Iterator[GeneratedToken]:
        """Stream the tokens of one sequence ([1, S] ids or a string)."""
        if mode not in ("deep", "fast"):
            raise ValueError(f"mode must be 'deep' or 'fast', not {mode!r}")
        ids = self.encode(input_ids) if isinstance(input_ids, str) else input_ids
        if ids.dim() == 1:
            ids = ids[None]
        if ids.shape[0] != 1:
            raise ValueError("generate() streams one sequence; use generate_batch() for B > 1")
        opts = self._options(max_new_tokens, stop, mode=mode, exit_threshold=exit_threshold, temperature=temperature, top_p=top_p,
                             top_k=top_k, repetition_penalty=repetition_penalty, seed=seed, min_steps=min_steps, max_steps=max_steps)
        for tokens in generate(self.model, self.tokenizer, ids.to(self.device), opts):
            if tokens[0] is not None:
                yield tokens[0]

    def generate_batch(self, prompts: list[list[int]] | list[str], max_new_tokens: int = 64, mode: str = "deep", **kwargs) -> list[list[GeneratedToken]]:
        """Generate for several prompts at once (left padding); one token list per prompt."""
        seqs = [self.tokenizer.encode(p, add_special_tokens=False) if isinstance(p, str) else list(p) for p in prompts]
        width = max(len(s) for s in seqs)
        pad = self.config.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], dtype=torch.long, device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], dtype=torch.long, device=self.device)
        stop = kwargs.pop("stop", None)
        opts = self._options(max_new_tokens, stop, mode=mode, **kwargs)
        out: list[list[GeneratedToken]] = [[] for _ in seqs]
        for tokens in generate(self.model, self.tokenizer, ids, opts, attention_mask=mask):
            for b, token in enumerate(tokens):
                if token is not None:
                    out[b].append(token)
        return out
