"""Claims that copy a sentence of their evidence: word for word, or with one thing changed.

A model that answers from numbered passages often copies a sentence, or a clause of one. Two cases
settle the verdict before any scoring:
- the claim is a sentence of the evidence, word for word (case, spacing, quotes and the closing
  full stop aside): the source states it, so it is supported;
- the claim is a sentence, or a run of at least four words of one, with only a negation added or
  removed ("stops" / "does not stop") or a number changed: the source states otherwise, so it is
  contradicted.
The scored layers in `support` cannot see either: they were fitted on paraphrased claims, gave a
verbatim quote 0.54 and a negated copy of its sentence 0.52 ("supported").

This module knows only word sequences: it does not judge paraphrases, and it reads a negation in
a clause the claim did not copy as one that may govern it (so it leaves that case to scoring).
"""

from __future__ import annotations

import re
from enum import Enum

from lantern.records import Verdict
from lantern.verify.words import NEGATIONS, stem

_TOKEN = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[A-Za-z][A-Za-z'\-]*")
_AUXILIARIES = {"do", "does", "did", "is", "are", "was", "were", "has", "have", "had", "will", "can", "could", "would", "should", "may", "might", "must"}
_CONTRACTIONS = {"can't": "can not", "won't": "will not", "shan't": "shall not", "ain't": "is not"}
MIN_COPIED_WORDS = 4
"""A shorter run of shared words is a phrase, not a copied clause."""


class Copy(str, Enum):
    verbatim = "verbatim"
    negation_changed = "negation_changed"
    number_changed = "number_changed"


def _normalised(sentence: str) -> str:
    sentence = re.sub(r"\s+", " ", sentence.replace("\u2019", "'")).strip().casefold()
    return sentence.strip("\"'`*_ ").rstrip(".!?;: ").strip("\"'`*_ ")


def states_verbatim(claim: str, sentence: str) -> bool:
    """Is the claim this sentence, word for word (case, spacing, quotes and the closing full stop aside)?"""
    normalised = _normalised(claim)
    return bool(normalised) and normalised == _normalised(sentence)


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, key) per word: kind 'negation', 'auxiliary', 'number' or 'word'; words stemmed."""
    text = text.replace("\u2019", "'").lower()
    for contraction, expanded in _CONTRACTIONS.items():
        text = text.replace(contraction, expanded)
    text = text.replace("n't", " not")
    out = []
    for token in _TOKEN.findall(text):
        if token[0].isdigit():
            out.append(("number", token.replace(",", "").removesuffix(".0")))
        elif token in NEGATIONS:
            out.append(("negation", token))
        elif token in _AUXILIARIES:
            out.append(("auxiliary", token))
        else:
            out.append(("word", stem(token)))
    return out


def _find(needle: list[str], haystack: list[str]) -> int:
    for start in range(len(haystack) - len(needle) + 1):
        if haystack[start : start + len(needle)] == needle:
            return start
    return -1


def changed_copy(claim: str, sentence: str) -> Copy | None:
    """`negation_changed` or `number_changed` when the claim is the sentence (or a run of at least
    MIN_COPIED_WORDS of its words) with only that changed; otherwise None."""
    claim_tokens, sentence_tokens = _tokens(claim), _tokens(sentence)
    # Compare the words, with every number as '#': what is left must be a copy.
    claim_words = [key if kind == "word" else "#" for kind, key in claim_tokens if kind in ("word", "number")]
    positions = [i for i, (kind, _) in enumerate(sentence_tokens) if kind in ("word", "number")]
    sentence_words = [sentence_tokens[i][1] if sentence_tokens[i][0] == "word" else "#" for i in positions]
    if len(claim_words) < MIN_COPIED_WORDS:
        return None
    start = _find(claim_words, sentence_words)
    if start < 0:
        return None
    # The copied window of the sentence, with the negations inside it (and one just before it: "not all ...").
    first, last = positions[start], positions[start + len(claim_words) - 1]
    if first > 0 and sentence_tokens[first - 1][0] == "negation":
        first -= 1
    window = sentence_tokens[first : last + 1]
    negations = lambda tokens: sum(kind == "negation" for kind, _ in tokens) % 2  # noqa: E731 - "not never" reads as yes
    # A negation elsewhere in the sentence may govern the copied clause ('he would not agree that
    # CO2 is a primary contributor'): then the scored layers decide.
    if negations(claim_tokens) != negations(window) and negations(claim_tokens) != negations(sentence_tokens):
        return Copy.negation_changed
    if [key for kind, key in claim_tokens if kind == "number"] != [key for kind, key in window if kind == "number"]:
        return Copy.number_changed
    return None


def copied_sentence(claim: str, sentences: list[str]) -> tuple[int, Copy] | None:
    """The first sentence the claim copies word for word, else the first it copies with a negation
    or a number changed, as (index, kind); None when it copies none."""
    for i, sentence in enumerate(sentences):
        if states_verbatim(claim, sentence):
            return i, Copy.verbatim
    for i, sentence in enumerate(sentences):
        change = changed_copy(claim, sentence)
        if change is not None:
            return i, change
    return None


def settled(kind: Copy) -> tuple[float, Verdict]:
    """The confidence and verdict a copy settles: the source states the claim, or states otherwise."""
    return (1.0, Verdict.supported) if kind == Copy.verbatim else (0.0, Verdict.contradicted)
