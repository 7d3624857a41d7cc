"""Any local transformers causal LM as a reasoner (`backend = "hf"`).

Loads `AutoModelForCausalLM` and its tokenizer from a local folder or a model id already in the
Hugging Face cache (never downloading unless downloads are allowed), prompts it through its own
chat template, and streams through transformers' `TextIteratorStreamer` while `generate` runs in
a worker thread. When the template takes `tools` (Qwen, Llama 3.1, Hermes-style templates), the
tool definitions go in natively and the model's `<tool_call>` blocks are parsed; otherwise the
text protocol of prompts/answer.toml is used. Cancellation (or a consumer that stops reading) is
a stopping criterion checked at every token.

This module knows nothing about retrieval or verification; it has no exit steps to report.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any, Iterator

from lantern.backends.text_stream import Piece, ReaderStream
from lantern.errors import ModelNotFound
from lantern.loop.reason import build_messages
from lantern.prompts import load_prompts
from lantern.records import Draft, Evidence, Question

_loading = threading.Lock()


def resolve(reference: str) -> Path:
    """The local folder of a transformers model: a path, or an id already in the HF cache."""
    path = Path(reference).expanduser()
    if (path / "config.json").is_file():
        return path
    if not path.exists() and reference.count("/") == 1:
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(reference, local_files_only=True))
        except Exception:
            pass
    raise ModelNotFound(f"backend hf: no transformers model at {reference!r} (a folder with config.json, or a model id already in "
                        f"the Hugging Face cache); set model to such a folder, or backend = \"ouro\".")


@functools.lru_cache(maxsize=2)
def _load(path: str, device: str, dtype: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(target).eval()
    except Exception as exc:
        raise ModelNotFound(f"backend hf: cannot load the model at {path} ({exc.__class__.__name__}: {str(exc)[:160]}); "
                            f"check that the folder is a complete transformers checkpoint.") from exc
    return model, tokenizer, threading.RLock()


class _Stop:
    """A stopping criterion: generation ends at the next token once `event` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class HFReasoner:
    backend = "hf"
    rewrites = True
    uses_tools = True

    def __init__(self, model, tokenizer, lock, settings, name: str) -> None:
        self.model, self.tokenizer, self.lock = model, tokenizer, lock
        self.settings = settings
        self.prompts = load_prompts("answer", settings.prompts_dir)
        self.name = name
        self.native_tools = "tools" in (tokenizer.chat_template or "")

    @classmethod
    def load(cls, settings) -> "HFReasoner":
        path = resolve(settings.model)
        with _loading:
            model, tokenizer, lock = _load(str(path), settings.device, settings.dtype)
        return cls(model, tokenizer, lock, settings, settings.model)

    def judge(self, template: str, exit_threshold: float):
        return None  # no calibrated yes/no reading for arbitrary models

    def _inputs(self, messages: list[dict[str, str]], tools: list[dict[str, Any]] | None):
        kwargs: dict[str, Any] = {}
        if tools and self.native_tools:
            kwargs["tools"] = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                                 "parameters": t["input_schema"]}} for t in tools]
        encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True, return_tensors="pt", **kwargs)
        return {k: v.to(self.model.device) for k, v in encoded.items()}

    def stream(self, question: Question, evidence: list[Evidence], feedback: list[str] | None = None,
               tools: list[dict[str, Any]] | None = None, cancel: threading.Event | None = None) -> Iterator[Piece | Draft]:
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        messages = build_messages(self.prompts, question, evidence, feedback, None if self.native_tools else tools)
        inputs = self._inputs(messages, tools)
        opening = self.tokenizer.decode(inputs["input_ids"][0, -4:].tolist())
        reader = ReaderStream(self.prompts["tool_call_prefix"], thinking_first=opening.rstrip().endswith("<think>"))
        stop = threading.Event()
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        greedy = self.settings.temperature <= 0
        options = dict(inputs, streamer=streamer, max_new_tokens=self.settings.max_new_tokens, do_sample=not greedy,
                       stopping_criteria=StoppingCriteriaList([_Stop(stop)]), pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        if not greedy:
            options["temperature"] = self.settings.temperature
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        failure: list[BaseException] = []
        generated: list[int] = []

        def run() -> None:
            try:
                with self.lock:
                    out = self.model.generate(**options)
                generated.append(int(out.shape[-1] - inputs["input_ids"].shape[-1]))
            except BaseException as exc:  # noqa: BLE001 (re-raised in the consumer's thread)
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name="lantern-hf-generate", daemon=True)
        worker.start()
        try:
            for text in streamer:
                if text:
                    yield from reader.feed(text)
                if cancel is not None and cancel.is_set():
                    stop.set()
        finally:
            stop.set()  # a consumer that stopped reading also stops the model
            worker.join()
        if failure:
            raise failure[0]
        yield from reader.finish()
        text, thinking, calls, rejected = reader.result()
        cancelled = cancel is not None and cancel.is_set()
        yield Draft(text=text, thinking=thinking, tool_calls=[] if cancelled else calls, rejected_calls=[] if cancelled else rejected,
                    model=self.name, tokens=generated[0] if generated else 0, cancelled=cancelled)
