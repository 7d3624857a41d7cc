"""Reason: question + numbered evidence -> a streamed Draft answer with [n] citations (or tool requests).

Every reasoner has one verb, `stream(question, evidence, feedback, tools, cancel)`, which yields
`Piece`s as the text is made (answer text for the reader, or thinking) and ends with the `Draft`.
A reasoner says what it can do instead of being asked what it is:
- `backend`: which one it is (ouro, hf, openai, extractive);
- `rewrites`: it can redraft with the verifier's feedback (a model can; quoting cannot);
- `uses_tools`: it can ask for tools;
- `judge(template, exit_threshold)`: a yes/no judge for the verifier, or None.

Reasoners: the native Ouro runtime (`lantern.backends.ouro`, the default), any local transformers
causal LM (`lantern.backends.hf`), any OpenAI-compatible endpoint (`lantern.backends.openai_chat`),
and `ExtractiveReasoner`, used when the default model's weights are not installed: it answers
with the evidence sentences closest to the question, each citing its passage, so the same
verification applies. `choose_reasoner(settings)` picks one from the `backend` setting.

This module knows nothing about retrieval or verification.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from lantern.backends.text_stream import Piece
from lantern.records import Draft, Evidence, Question
from lantern.verify import relevance
from lantern.verify.claims import sentence_spans
from lantern.verify.support import content_words, sentence_idf, unflagged_parts


class Reasoner(Protocol):
    name: str
    backend: str
    rewrites: bool
    uses_tools: bool

    def stream(self, question: Question, evidence: list[Evidence], feedback: list[str] | None = None,
               tools: list[dict[str, Any]] | None = None, cancel: threading.Event | None = None) -> Iterator[Piece | Draft]: ...

    def judge(self, template: str, exit_threshold: float): ...


def draft_of(reasoner: Reasoner, question: Question, evidence: list[Evidence], **kwargs) -> Draft:
    """The Draft alone, for callers that do not stream."""
    draft = None
    for item in reasoner.stream(question, evidence, **kwargs):
        if isinstance(item, Draft):
            draft = item
    assert draft is not None, "a reasoner's stream must end with its Draft"
    return draft


def build_messages(prompts: dict[str, Any], question: Question, evidence: list[Evidence],
                   feedback: list[str] | None = None, tools: list[dict[str, Any]] | None = None) -> list[dict[str, str]]:
    """The chat messages for the answer prompt (templates from prompts/answer.toml). `tools` are
    described in the text protocol; pass None when the backend hands them over natively. Text
    flagged at ingestion as addressed to AI systems is shown elided."""
    from lantern.knowledge.injection import unflagged_text  # here, not above: importing the KB package loads lancedb

    passages = "\n".join(
        prompts["passage"].format(number=i, source=e.source, start_line=e.start_line, end_line=e.end_line, text=" ".join(unflagged_text(e).split()))
        for i, e in enumerate(evidence, 1)
    ) or prompts["no_passages"]
    history = ""
    if question.history:
        history = prompts["history_header"] + "".join(prompts["history_turn"].format(role=t.role, text=t.text) for t in question.history[-6:]) + "\n"
    tool_text = ""
    if tools:
        tool_list = "\n".join(f"- {signature(t['name'], t['input_schema'])}: {' '.join(t['description'].split())}" for t in tools)
        tool_text = prompts["tools"].format(tool_list=tool_list)
    feedback_text = prompts["feedback"].format(unsupported="\n".join(f"- {f}" for f in feedback)) if feedback else ""
    return [
        {"role": "system", "content": prompts["system"].format(tools=tool_text).strip()},
        {"role": "user", "content": prompts["user"].format(history=history, passages=passages, question=question.text, feedback=feedback_text)},
    ]


def signature(name: str, schema: dict[str, Any]) -> str:
    """A tool as a compact call signature, `convert(value: number, from_unit: string, scheme?: "css"|"x11")`:
    what a model needs to call it, in a third of the tokens of its JSON Schema (every token of the
    prompt is prefill, about 25 tokens a second for Ouro-1.4B on a 2-core CPU). `?` marks optional."""
    required = set(schema.get("required", []))
    parts = []
    for argument, spec in (schema.get("properties") or {}).items():
        if "enum" in spec:
            kind = "|".join(f'"{v}"' if isinstance(v, str) else str(v) for v in spec["enum"])
        else:
            types = spec.get("type") or [s.get("type") for s in spec.get("anyOf", []) if s.get("type") not in (None, "null")]
            kind = "|".join(types) if isinstance(types, list) else str(types)
        parts.append(f"{argument}{'' if argument in required else '?'}: {kind or 'any'}")
    return f"{name}({', '.join(parts)})"


TYPE_BONUS = 0.15
"""Score added to a candidate sentence holding a value of the type the question asks for."""
SENTENCE_MARGIN = 0.15
"""How far below the best sentence's score another may be and still join the extractive answer."""


class ExtractiveReasoner:
    """Answers with the evidence sentences most similar to the question (no language model)."""

    name = "extractive"
    backend = "extractive"
    rewrites = False
    uses_tools = False

    def __init__(self, embed: Callable[[list[str]], np.ndarray], max_sentences: int = 3) -> None:
        self.embed = embed
        self.max_sentences = max_sentences

    def judge(self, template: str, exit_threshold: float):
        return None

    def stream(self, question: Question, evidence: list[Evidence], feedback: list[str] | None = None,
               tools: list[dict[str, Any]] | None = None, cancel: threading.Event | None = None) -> Iterator[Piece | Draft]:
        chosen = self.choose(question, evidence)
        for i, (number, sentence) in enumerate(chosen):  # each quote reaches the reader as it is chosen
            yield Piece(("" if i == 0 else " ") + f"{sentence} [{number}]")
        yield Draft(text=" ".join(f"{sentence} [{number}]" for number, sentence in chosen), model=self.name)

    def choose(self, question: Question, evidence: list[Evidence]) -> list[tuple[int, str]]:
        """(passage number, sentence) of the best answer sentences, in passage order."""
        ranked = self.rank(question, evidence)
        if not ranked:
            return []
        # Further sentences join the best one only when they score nearly as well: the answer is
        # what answers the question, not everything near it.
        best = ranked[0][0]
        chosen = [(number, sentence, i) for i, (score, number, sentence) in enumerate(ranked[: self.max_sentences])
                  if score >= best - SENTENCE_MARGIN]
        return [(number, sentence) for number, sentence, _ in sorted(chosen, key=lambda c: (c[0], c[2]))]

    def rank(self, question: Question, evidence: list[Evidence]) -> list[tuple[float, int, str]]:
        """(score, passage number, sentence) for every candidate answer sentence, best first."""
        candidates: list[tuple[int, str]] = []
        spans: list[str] = []
        headings: list[str] = []
        for number, passage in enumerate(evidence, 1):
            # Flagged text (an order to AI systems planted in a document) is never a candidate;
            # a sentence it was glued to keeps its own words.
            for a, b in (part for span in sentence_spans(passage.text) for part in unflagged_parts(passage, *span)):
                sentence = passage.text[a:b]
                if sentence.lstrip().startswith("#") or len(sentence.split()) < 4:
                    continue  # headings and fragments are not answers
                candidates.append((number, " ".join(sentence.split())))
                spans.append(sentence)  # as the verifier will embed it, so the shared cache serves both
                headings.append(passage.heading)  # the whole path: "Lake Tahoe > Depth" says what "The lake" is
        if not candidates:
            return []
        vecs = np.asarray(self.embed([question.text] + spans))
        # A sentence is a good answer when it is close to the question in meaning and in words
        # (stemmed content words, weighted by rarity among the candidates, counting its section's
        # headings as a reader would: "It stops when..." under "When the model stops"), and
        # sits in a passage retrieval ranked high; the rank term keeps one stray similar sentence
        # from winning.
        idf = sentence_idf([s for _, s in candidates])
        asked = set(content_words(question.text))
        total = sum(idf(w) for w in asked) or 1.0
        overlap = np.array([sum(idf(w) for w in asked & set(content_words(f"{h} {s}"))) / total
                            for h, (_, s) in zip(headings, candidates)])
        sims = vecs[1:] @ vecs[0] + 0.3 * overlap + np.array([0.1 / number for number, _ in candidates])
        # A sentence that carries the kind of value the question asks for (a quantity with its
        # dimension for "how deep", a year for "when", a name for "who") is the answer's best
        # candidate; one that only talks about the same subject is not.
        wanted = relevance.asked(question.text)
        if wanted.answer_type != "any":
            sims = sims + TYPE_BONUS * np.array([relevance.has_value(wanted, s) for _, s in candidates])
        order = np.argsort(-sims, kind="stable")
        return [(float(sims[i]), *candidates[i]) for i in order]


def choose_reasoner(settings, embed: Callable[[list[str]], np.ndarray], require_model: bool = False) -> tuple[Reasoner, str | None]:
    """(reasoner, notice) for the `backend` setting. The default backend falls back to extractive
    answers, with a one-time notice, when its weights are not installed; a model the user named
    (`require_model`), or another backend they chose, must work or it is an error."""
    if settings.backend == "hf":
        from lantern.backends.hf import HFReasoner

        return HFReasoner.load(settings), None
    if settings.backend == "openai":
        from lantern.backends.openai_chat import OpenAIReasoner

        return OpenAIReasoner(settings), None
    from lantern.runtime.locate import locate, require

    found = locate(settings.model)
    if found.path is None and require_model:
        require(settings.model)  # raises ModelNotFound naming where it looked and what to run
    if found.path is None:
        return ExtractiveReasoner(embed), (
            f"The reasoning model {settings.model} is not installed, so this answer quotes the best evidence sentences "
            f"instead of reasoning over them. Get the model with `lantern model pull {settings.model}` (needs internet once)."
        )
    from lantern.backends.ouro import OuroReasoner, loaded

    lm = loaded(str(found.path), settings.device, settings.dtype, settings.quant, settings.threads)
    return OuroReasoner(lm, settings, name=settings.model), None
