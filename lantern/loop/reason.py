"""Reason: question + numbered evidence -> a Draft answer with [n] citations (or tool requests).

Two reasoners share one interface:
- `LoopLMReasoner`: the Ouro LoopLM through Lantern's runtime, DEEP mode by default, prompted from
  prompts/answer.toml, streaming tokens to a callback;
- `ExtractiveReasoner`: used when no model weights are installed. It answers with the evidence
  sentences closest to the question, each citing its passage, so the same verification applies.
`choose_reasoner(settings)` picks the LoopLM when its weights are found locally and says, once,
how to get them when they are not.

This module knows nothing about retrieval or verification.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Protocol

import numpy as np

from lantern.prompts import load_prompts
from lantern.records import Draft, Evidence, Question
from lantern.verify.claims import sentence_spans
from lantern.verify.support import content_words, sentence_idf

OnToken = Callable[[str], None]


class Reasoner(Protocol):
    name: str

    def draft(self, question: Question, evidence: list[Evidence], feedback: list[str] | None = None,
              tools: list[dict[str, Any]] | None = None, on_token: OnToken | None = None) -> Draft: ...


def build_messages(prompts: dict[str, Any], question: Question, evidence: list[Evidence],
                   feedback: list[str] | None = None, tools: list[dict[str, Any]] | None = None) -> list[dict[str, str]]:
    """The chat messages for the answer prompt (templates from prompts/answer.toml)."""
    passages = "\n".join(
        prompts["passage"].format(number=i, source=e.source, start_line=e.start_line, end_line=e.end_line, text=" ".join(e.text.split()))
        for i, e in enumerate(evidence, 1)
    )
    history = ""
    if question.history:
        history = prompts["history_header"] + "".join(prompts["history_turn"].format(role=t.role, text=t.text) for t in question.history[-6:]) + "\n"
    tool_text = ""
    if tools:
        tool_list = "\n".join(f"- {t['name']}: {t['description']} arguments schema: {t['input_schema']}" for t in tools)
        tool_text = prompts["tools"].format(tool_list=tool_list)
    feedback_text = prompts["feedback"].format(unsupported="\n".join(f"- {f}" for f in feedback)) if feedback else ""
    return [
        {"role": "system", "content": prompts["system"].format(tools=tool_text).strip()},
        {"role": "user", "content": prompts["user"].format(history=history, passages=passages, question=question.text, feedback=feedback_text)},
    ]


class ExtractiveReasoner:
    """Answers with the evidence sentences most similar to the question (no language model)."""

    name = "extractive"

    def __init__(self, embed: Callable[[list[str]], np.ndarray], max_sentences: int = 3) -> None:
        self.embed = embed
        self.max_sentences = max_sentences

    def draft(self, question: Question, evidence: list[Evidence], feedback: list[str] | None = None,
              tools: list[dict[str, Any]] | None = None, on_token: OnToken | None = None) -> Draft:
        candidates: list[tuple[int, str]] = []
        spans: list[str] = []
        headings: list[str] = []
        for number, passage in enumerate(evidence, 1):
            for a, b in sentence_spans(passage.text):
                sentence = passage.text[a:b]
                if sentence.lstrip().startswith("#") or len(sentence.split()) < 4:
                    continue  # headings and fragments are not answers
                candidates.append((number, " ".join(sentence.split())))
                spans.append(sentence)  # as the verifier will embed it, so the shared cache serves both
                headings.append(passage.heading.rsplit(">", 1)[-1])
        if not candidates:
            return Draft(text="", model=self.name)
        vecs = np.asarray(self.embed([question.text] + spans))
        # A sentence is a good answer when it is close to the question in meaning and in words
        # (stemmed content words, weighted by rarity among the candidates, counting its section's
        # own heading as a reader would: "It stops when..." under "When the model stops"), and
        # sits in a passage retrieval ranked high; the rank term keeps one stray similar sentence
        # from winning.
        idf = sentence_idf([s for _, s in candidates])
        asked = set(content_words(question.text))
        total = sum(idf(w) for w in asked) or 1.0
        overlap = np.array([sum(idf(w) for w in asked & set(content_words(f"{h} {s}"))) / total
                            for h, (_, s) in zip(headings, candidates)])
        sims = vecs[1:] @ vecs[0] + 0.3 * overlap + np.array([0.1 / number for number, _ in candidates])
        chosen = sorted(np.argsort(-sims)[: self.max_sentences], key=lambda i: (candidates[i][0], i))
        text = " ".join(f"{candidates[i][1]} [{candidates[i][0]}]" for i in chosen)
        return Draft(text=text, model=self.name)  # nothing to stream: the sentences are quotes


class LoopLMReasoner:
    """The Ouro LoopLM via lantern.runtime: DEEP (adaptive depth) or FAST, streamed."""

    def __init__(self, lm, settings, prompts: dict[str, Any] | None = None) -> None:
        self.lm = lm
        self.settings = settings
        self.prompts = prompts or load_prompts("answer", settings.prompts_dir)
        self.name = getattr(lm, "name", settings.model)

    def draft(self, question: Question, evidence: list[Evidence], feedback: list[str] | None = None,
              tools: list[dict[str, Any]] | None = None, on_token: OnToken | None = None) -> Draft:
        from lantern.loop.act import parse_tool_calls

        input_ids = self.lm.chat_ids(build_messages(self.prompts, question, evidence, feedback, tools))
        pieces, steps = [], []
        for token in self.lm.generate(input_ids, max_new_tokens=self.settings.max_new_tokens, mode=self.settings.mode,
                                      exit_threshold=self.settings.exit_threshold, temperature=self.settings.temperature):
            pieces.append(token.text)
            steps.append(token.exit_step + 1)
            if on_token:
                on_token(token.text)
        text = "".join(pieces)
        _, answer = self.lm.split_thinking(text)
        calls, _ = parse_tool_calls(answer, self.prompts["tool_call_prefix"])
        return Draft(text=answer.strip(), tool_calls=calls, model=self.name,
                     avg_exit_steps=float(np.mean(steps)) if steps else None, tokens=len(steps))


def choose_reasoner(settings, embed: Callable[[list[str]], np.ndarray], require_model: bool = False) -> tuple[Reasoner, str | None]:
    """(reasoner, notice): the LoopLM when its weights are here, else extractive with a one-time notice.
    With `require_model` (the user named a model), missing weights are an error instead."""
    from lantern.runtime.locate import locate, require

    found = locate(settings.model)
    if found.path is None and require_model:
        require(settings.model)  # raises ModelNotFound naming where it looked and what to run
    if found.path is None:
        return ExtractiveReasoner(embed), (
            f"The reasoning model {settings.model} is not installed, so this answer quotes the best evidence sentences "
            f"instead of reasoning over them. Get the model with `lantern model pull {settings.model}` (needs internet once)."
        )
    lm = _loaded(str(found.path), settings.device, settings.dtype, settings.int8)
    lm.name = settings.model
    return LoopLMReasoner(lm, settings), None


@functools.lru_cache(maxsize=1)
def _loaded(path: str, device: str, dtype: str, int8: bool):
    """One loaded LoopLM per process: a chat session or an eval asks many questions."""
    from lantern.runtime import load

    return load(path, device=device, dtype=dtype, int8=int8)
