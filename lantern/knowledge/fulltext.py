"""BM25 full-text ranking in memory, term for term the ranking of LanceDB's full-text index as
`store.py` builds it (`FTS(language="English", stem=True, remove_stop_words=True, lower_case=True,
ascii_folding=True)` on `search_text`, LanceDB 0.40 / lance 13).

How a text becomes terms, in LanceDB's order (lance's `InvertedIndexParams::build`):
1. the "simple" tokenizer: maximal runs of letters and digits (Unicode alphanumerics; everything
   else, `_` included, separates words);
2. words of 40 or more UTF-8 bytes are dropped (`max_token_length` 40);
3. lower case;
4. the Snowball English stemmer (Porter2; `snowballstemmer`, the same algorithm LanceDB compiles in);
5. stop words are dropped *after* stemming, so "does" (stem "doe") stays while "was" goes; the list
   is NLTK's 179 English words, which is LanceDB's;
6. ASCII folding (accents and ligatures: "café" -> "cafe", "bjørn" -> "bjorn", "m²" -> "m2").
A query goes through the same steps, and its terms are scored with their repetitions ("co2 ... co2"
counts twice, as LanceDB counts it). The score is Okapi BM25 with LanceDB's constants and float32
arithmetic: idf = ln((N - df + 0.5) / (df + 0.5) + 1), tf part = 2.2 tf / (tf + 1.2 (0.25 + 0.75
dl / avgdl)), dl a row's term count after all six steps, N the rows with at least one term (LanceDB
leaves a row without any, e.g. only stop words, out of N and of avgdl).

Checked against LanceDB itself: tests/knowledge/test_memory_index.py (the shipped kb/, the test
documents, words chosen to trip the analyzer), and once over the 44,762 distinct words of the
Climate-FEVER, WiCE, PubMedQA, kb/ and README texts, each as a row of its own: every word finds the
same rows in both (the one miss, "µg" against "μg", is fixed), and scores agree to float32 rounding.
What is allowed to differ, precisely:
- rows with exactly equal scores: LanceDB returns them in its heap's order, which follows its
  index layout; here they come in table order. At the `limit` cut the tied rows kept may differ.
- characters that Python and Rust classify differently (combining vowel signs of Indic scripts
  count as letters in Rust, not here), and letters whose ASCII folding in LanceDB's table differs
  from their Unicode decomposition: a word holding one may be split or folded differently.
This module knows nothing about tables, vectors or files.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

MAX_TOKEN_BYTES = 40
"""Words of this many UTF-8 bytes or more are not indexed (lance's default `max_token_length`)."""
K1 = np.float32(1.2)
B = np.float32(0.75)
"""LanceDB's BM25 constants (lance-index `scorer.rs`)."""

STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him his
    himself she she's her hers herself it it's its itself they them their theirs themselves what which who whom this
    that that'll these those am is are was were be been being have has had having do does did doing a an the and but
    if or because as until while of at by for with about against between into through during before after above below
    to from up down in out on off over under again further then once here there when where why how all any both each
    few more most other some such no nor not only own same so than too very s t can will just don don't should
    should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't
    haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't
    weren weren't won won't wouldn wouldn't""".split()
)
"""The English stop words of LanceDB's index, compared after stemming (the NLTK list)."""

_WORD = re.compile(r"[^\W_]+")
_FOLD = {"ø": "o", "ß": "ss", "æ": "ae", "œ": "oe", "ð": "d", "þ": "th", "ł": "l", "đ": "d", "ħ": "h", "ı": "i",
         "ŀ": "l", "ŋ": "n", "ŧ": "t", "ſ": "s", "ĸ": "q"}
"""Lower-case letters that Unicode does not decompose into a base letter and an accent."""


_stemmers = threading.local()


def _stem(word: str) -> str:
    """Snowball English, one stemmer per thread (a stemmer keeps the word it works on in itself)."""
    stem = getattr(_stemmers, "english", None)
    if stem is None:
        import snowballstemmer

        stem = _stemmers.english = snowballstemmer.stemmer("english").stemWord
    return stem(word)


def fold_to_ascii(term: str) -> str:
    """Accents off precomposed letters, ligatures spelled out ("½" -> "12"); letters with no ASCII
    form, and accents that stood alone (as lower-casing "İ" leaves one), are kept as they are."""
    if term.isascii():
        return term
    out = []
    for ch in term:
        if ch.isascii() or unicodedata.combining(ch):
            out.append(ch)
        elif ch in _FOLD:
            out.append(_FOLD[ch])
        else:  # the letter's compatibility decomposition without its accents, when that is ASCII ("µ" stays)
            base = "".join(part for part in unicodedata.normalize("NFKD", ch) if part.isalnum() and not unicodedata.combining(part))
            out.append(base if base and base.isascii() else ch)
    return "".join(out)


@lru_cache(maxsize=1 << 18)
def term_of(word: str) -> str:
    """The indexed term of one word of the tokenizer, or "" when the word is not indexed."""
    if len(word) >= MAX_TOKEN_BYTES or (not word.isascii() and len(word.encode()) >= MAX_TOKEN_BYTES):
        return ""
    stem = _stem(word.lower())
    return "" if stem in STOP_WORDS else fold_to_ascii(stem)


def terms(text: str) -> list[str]:
    """The terms LanceDB's index makes of `text`, in order, repetitions included."""
    return [term for term in map(term_of, _WORD.findall(text)) if term]


class FullTextIndex:
    """BM25 over a fixed list of texts; rows are numbered as the texts were given. Postings live in
    two flat arrays sorted by term, then row: `_rows[_start[t]:_end[t]]` hold term t, `_tfs` its counts."""

    def __init__(self, texts: Iterable[str]) -> None:
        term_ids: dict[str, int] = {}  # term -> id, in order of first sight
        word_ids: dict[str, int] = {}  # word as written -> its term's id, -1 when not indexed
        pair_terms: list[int] = []  # one entry per (row, distinct term of the row)
        pair_tfs: list[int] = []
        pair_rows: list[int] = []
        lengths: list[int] = []
        for row, text in enumerate(texts):
            words = _WORD.findall(text)
            ids = [word_ids.get(word, -2) for word in words]
            if -2 in ids:  # words not seen before: their terms once, then the dictionary answers
                for position, word in enumerate(words):
                    if ids[position] == -2:
                        term = term_of(word)
                        ids[position] = word_ids[word] = term_ids.setdefault(term, len(term_ids)) if term else -1
            counted = Counter(ids)
            counted.pop(-1, None)
            lengths.append(sum(counted.values()))
            pair_terms.extend(counted)
            pair_tfs.extend(counted.values())
            pair_rows.extend([row] * len(counted))
        self.rows = len(lengths)
        self.indexed_rows = sum(1 for length in lengths if length)  # LanceDB counts rows with no term nowhere
        self._term_ids = term_ids
        order = np.argsort(np.array(pair_terms, dtype=np.int64), kind="stable")  # by term; rows stay ascending
        terms_sorted = np.array(pair_terms, dtype=np.int64)[order]
        self._rows = np.array(pair_rows, dtype=np.int64)[order]
        self._tfs = np.array(pair_tfs, dtype=np.float32)[order]
        self._start = np.searchsorted(terms_sorted, np.arange(len(term_ids)), side="left")
        self._end = np.searchsorted(terms_sorted, np.arange(len(term_ids)), side="right")
        doc_lengths = np.array(lengths, dtype=np.float32)
        average = np.float32(sum(lengths)) / np.float32(max(self.indexed_rows, 1))
        # The length part of each row's tf denominator, as lance computes it in float32.
        self._norms = K1 * (np.float32(1.0) - B + B * doc_lengths / average) if self.rows else doc_lengths

    def idf(self, df: int) -> np.float32:
        n, df = np.float32(self.indexed_rows), np.float32(df)
        return np.float32(math.log(float((n - df + np.float32(0.5)) / (df + np.float32(0.5)) + np.float32(1.0))))

    def scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows that hold at least one query term, ascending; their BM25 scores)."""
        total = np.zeros(self.rows, dtype=np.float32)
        matched = None
        for term in terms(query):
            term_id = self._term_ids.get(term)
            if term_id is None:
                continue
            span = slice(self._start[term_id], self._end[term_id])
            rows, tf = self._rows[span], self._tfs[span]
            total[rows] += self.idf(len(rows)) * (np.float32(2.2) * tf / (tf + self._norms[rows]))
            if matched is None:
                matched = np.zeros(self.rows, dtype=bool)
            matched[rows] = True
        if matched is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        rows = np.flatnonzero(matched)
        return rows, total[rows]

    def search(self, query: str, limit: int) -> list[tuple[int, float]]:
        """The best `limit` (row, score) pairs, best first; equal scores in row order."""
        rows, scores = self.scores(query)
        return top(rows, scores, limit)


def top(rows: np.ndarray, scores: np.ndarray, limit: int) -> list[tuple[int, float]]:
    """The `limit` highest-scoring (row, score) pairs, best first, ties in ascending row order.
    `rows` must be ascending."""
    if limit <= 0 or len(rows) == 0:
        return []
    if len(rows) > limit:  # keep the top `limit` and everything tied with the last of them
        cut = np.partition(scores, len(scores) - limit)[len(scores) - limit]
        keep = scores >= cut
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))[:limit]
    return list(zip(rows[order].tolist(), scores[order].tolist()))


def top_of(scores: Sequence[float] | np.ndarray, limit: int) -> list[tuple[int, float]]:
    """`top` over every row of a full score vector."""
    scores = np.asarray(scores)
    return top(np.arange(len(scores)), scores, limit)
