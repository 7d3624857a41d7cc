"""Claims that copy a sentence of their evidence: word for word, or with one thing changed.

A model that answers from numbered passages often copies a sentence, or a clause of one. Two cases
settle the verdict before any scoring:
- the claim is a sentence of the evidence, word for word (case, spacing, quotes and the closing
  full stop aside): the source states it, so it is supported;
- the claim copies a sentence, or at least four of its content words in order (a copy may leave
  out three words and reword one), with a negation added or removed ("stops" / "does not stop") or
  a number changed ("4 times" / "eight times"): the source states otherwise, so it is contradicted.
  A loose copy without such a change is not settled as supported: a left-out "only" or a
  reworded "rarely" changes the meaning, so it is scored.
The scored layers in `support` cannot see either: they were fitted on paraphrased claims, gave a
verbatim quote 0.54 and a negated copy of its sentence 0.52 ("supported").

This module knows only word sequences: it does not judge paraphrases, and it reads a negation in
a clause the claim did not copy as one that may govern it (so it leaves that case to scoring).
"""

from __future__ import annotations

import functools
import re
from enum import Enum

from lantern.records import Verdict
from lantern.verify.words import NEGATIONS, STOP_WORDS, fold, number_value, number_word_value, stem

_TOKEN = re.compile(r"\d+(?:st|nd|rd|th)\b|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[A-Za-z][A-Za-z'\-]*")
_AUXILIARIES = {"do", "does", "did", "is", "are", "was", "were", "has", "have", "had", "will", "can", "could", "would", "should", "may", "might", "must"}
_CONTRACTIONS = {"can't": "can not", "won't": "will not", "shan't": "shall not", "ain't": "is not"}
MIN_COPIED_WORDS = 4
"""A shorter run of shared words is a phrase, not a copied clause."""
MAX_INSERTED_WORDS = 3
"""How many of the sentence's words a copy may leave out ("every generated token runs all 4" -> "no token runs all")."""
MAX_CHANGED_WORDS = 1
"""How many of the claim's words may differ from the sentence's ("switched" for "changed")."""


class Copy(str, Enum):
    verbatim = "verbatim"
    negation_changed = "negation_changed"
    number_changed = "number_changed"


def _normalised(sentence: str) -> str:
    sentence = re.sub(r"\s+", " ", fold(sentence)).strip().casefold()
    return sentence.strip("\"'`*_ ").rstrip(".!?;: ").strip("\"'`*_ ")


def states_verbatim(claim: str, sentence: str) -> bool:
    """Is the claim this sentence, word for word (case, spacing, quotes and the closing full stop aside)?"""
    normalised = _normalised(claim)
    return bool(normalised) and normalised == _normalised(sentence)


@functools.lru_cache(maxsize=4096)  # a claim meets every candidate sentence, a sentence every claim
def _tokens(text: str) -> tuple[tuple[str, str], ...]:
    """(kind, key) per word: kind 'negation', 'filler' (auxiliaries and stop words), 'number' or
    'word' (stemmed)."""
    text = fold(text).lower()  # accents, typographic apostrophes and possessives as `words` reads them
    for contraction, expanded in _CONTRACTIONS.items():
        text = text.replace(contraction, expanded)
    text = text.replace("n't", " not")
    out = []
    for token in _TOKEN.findall(text):
        if token[0].isdigit() and token[-1].isalpha():
            out.append(("word", token))  # an ordinal, "19th": not a count to compare
        elif token[0].isdigit():
            out.append(("number", number_value(token)))
        elif spelled := number_word_value(token):
            out.append(("number", spelled))
        elif token in NEGATIONS:
            out.append(("negation", token))
        elif token in _AUXILIARIES or token in STOP_WORDS:
            out.append(("filler", token))  # "does not stop" / "stops", "its layers" / "the layers"
        else:
            out.append(("word", stem(token)))
    return tuple(out)


def _common_subsequence(needle: list[str], haystack: list[str]) -> list[tuple[int, int]]:
    """A longest common subsequence of two word lists, as (needle index, haystack index) pairs."""
    n, m = len(needle), len(haystack)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if needle[i] == haystack[j] else max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if needle[i] == haystack[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _align(needle: list[str], haystack: list[str]) -> list[tuple[int, int]] | None:
    """Where the claim's words (`needle`) lie in the sentence's, as (needle index, haystack index)
    pairs, when that makes a copy: all of its numbers and all but MAX_CHANGED_WORDS of its words, at
    least MIN_COPIED_WORDS of them words, inside a window of the sentence with at most MAX_INSERTED_WORDS others."""
    n, wanted = len(needle), set(needle)
    if len(wanted & set(haystack)) < max(MIN_COPIED_WORDS, len(wanted) - MAX_CHANGED_WORDS):
        return None  # cheap reject: most sentences share few words with the claim
    best: list[tuple[int, int]] = []
    for start, word in enumerate(haystack):
        if word not in wanted:
            continue
        pairs = [(i, start + j) for i, j in _common_subsequence(needle, haystack[start : start + n + MAX_INSERTED_WORDS])]
        if len(pairs) > len(best) or (len(pairs) == len(best) and pairs and pairs[-1][1] - pairs[0][1] < best[-1][1] - best[0][1]):
            best = pairs
    copied_words = sum(needle[i] != "#" for i, _ in best)  # numbers alone do not make a copy
    if copied_words < MIN_COPIED_WORDS or len(best) < n - MAX_CHANGED_WORDS or best[-1][1] - best[0][1] + 1 - len(best) > MAX_INSERTED_WORDS:
        return None
    if needle.count("#") != sum(needle[i] == "#" for i, _ in best):
        return None
    return best


def changed_copy(claim: str, sentence: str) -> Copy | None:
    """`negation_changed` or `number_changed` when the claim copies the sentence, or at least
    MIN_COPIED_WORDS of its words in order (see `_align` for how loose a copy may be), with a
    negation or a number changed; otherwise None."""
    claim_tokens, sentence_tokens = _tokens(claim), _tokens(sentence)
    # Compare the words, with every number as '#': what is left must be a copy.
    claim_keys = [(kind, key) for kind, key in claim_tokens if kind in ("word", "number")]
    positions = [i for i, (kind, _) in enumerate(sentence_tokens) if kind in ("word", "number")]
    as_word = lambda kind, key: key if kind == "word" else "#"  # noqa: E731
    if len(claim_keys) < MIN_COPIED_WORDS:
        return None
    aligned = _align([as_word(*t) for t in claim_keys], [as_word(*sentence_tokens[i]) for i in positions])
    if aligned is None:
        return None
    # The copied window of the sentence, with the negations inside it (and one just before it: "not all ...").
    first, last = positions[aligned[0][1]], positions[aligned[-1][1]]
    if first > 0 and sentence_tokens[first - 1][0] == "negation":
        first -= 1
    window = sentence_tokens[first : last + 1]
    negations = lambda tokens: sum(kind == "negation" for kind, _ in tokens) % 2  # noqa: E731 - "not never" reads as yes
    # A negation elsewhere in the sentence may govern the copied clause ('he would not agree that
    # CO2 is a primary contributor'): then the scored layers decide.
    if negations(claim_tokens) != negations(window) and negations(claim_tokens) != negations(sentence_tokens):
        return Copy.negation_changed
    # A number in the place of another, and found nowhere in the sentence ("1977" is in "1976/1977").
    sentence_numbers = {key for kind, key in sentence_tokens if kind == "number"}
    copied_numbers = [(claim_keys[i][1], sentence_tokens[positions[j]][1]) for i, j in aligned if claim_keys[i][0] == "number"]
    if any(mine != theirs and mine not in sentence_numbers for mine, theirs in copied_numbers):
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
