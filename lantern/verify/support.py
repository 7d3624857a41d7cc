"""How well does evidence support a claim? Layered checks -> a calibrated confidence and a verdict.

Layers, cheapest first:
0. copies (`copies`): a claim that is a sentence of its evidence word for word is supported with
   confidence 1; one that copies a sentence or a clause of one (a few words may differ) with a
   negation or a number changed is contradicted with confidence 0. The layers below score
   paraphrase and are not consulted then;
1. structural: are the claim's numbers, names and negations present in the best evidence?
2. lexical: how much of the claim's content (IDF-weighted words) the closest sentences cover;
3. embedding: MiniLM similarity of the claim, and of each of its parts, to the best sentences
   (a compound claim is only as supported as its least supported part);
4. judgement: an optional `judge(claim, evidence) -> P(supported)` (the loaded LoopLM as a yes/no
   judge, or an NLI model), averaged in log-odds with the feature score when present, bounded
   (`JUDGE_MAX_LOG_ODDS`), and skipped when no word of the claim is in the evidence.
Layers 1-3 become a feature vector; two sign-constrained logistic regressions, one fitted on the
Climate-FEVER dev half (is the evidence about the claim?) and one on the WiCE dev half (is every
detail there?), multiply into a confidence in [0, 1] (bench/verifier.py --fit writes them to
verifier_weights.json beside this module).

Text flagged at ingestion as addressed to AI systems (`Evidence.flags`) is never a candidate
sentence, and a claim that quotes it is unsupported with that reason, whatever its score.

This module knows nothing about retrieval or the answer loop: it gets a claim and candidate
passages, and returns the checked Claim record with its best-supporting verbatim quote.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from lantern.records import Claim, Evidence, Verdict
from lantern.verify.claims import sentence_spans, trimmed_spans
from lantern.verify.copies import copied_sentence, settled
from lantern.verify.words import content_words, entities, fold, has_negation, numbers, stem  # noqa: F401 - stem is part of the API

_PART_SPLIT = re.compile(r",\s+(?:and\s+|but\s+|while\s+|which\s+|who\s+)?|;\s+|\s+(?:and|but|while|whereas)\s+")

WEIGHTS_PATH = Path(__file__).with_name("verifier_weights.json")
FEATURES = ["emb_best", "emb_top3", "part_min", "coverage_top", "coverage_all", "number_share", "entity_share", "negation_mismatch", "number_conflict"]
FEATURE_SIGNS = np.array([1, 1, 1, 1, 1, 1, 1, -1, -1])
"""More support evidence may never lower the confidence: fitted weights are kept to these signs."""

Judge = Callable[[str, str], float]
JUDGE_MAX_LOG_ODDS = 2.0
"""How far one judgement may pull the confidence, in log-odds (P(yes) is read within 0.12 to 0.88):
neither the LoopLM's one-token yes/no nor an NLI head is calibrated on our data, and a degenerate
model says "yes" to anything with p = 0.99."""


def claim_parts(claim: str) -> list[str]:
    parts = [p.strip() for p in _PART_SPLIT.split(claim) if len(content_words(p)) >= 2]
    return parts or [claim]


def sentence_idf(sentences: list[str]) -> Callable[[str], float]:
    """IDF over the candidate sentences: a word found in every sentence says little about support."""
    df: dict[str, int] = {}
    for sentence in sentences:
        for word in set(content_words(sentence)):
            df[word] = df.get(word, 0) + 1
    n = len(sentences)
    return lambda word: math.log(1.0 + (n + 1) / (1 + df.get(word, 0)))


@dataclass
class Support:
    features: np.ndarray
    best: int
    """Index of the best-supporting sentence among the candidates."""
    ranked: list[int]


def support_features(
    claim: str,
    claim_vec: np.ndarray,
    part_vecs: np.ndarray,
    sentences: list[str],
    sentence_vecs: np.ndarray,
    idf: Callable[[str], float] | None = None,
) -> Support:
    """The feature vector (order: FEATURES) of a claim against candidate sentences (unit vectors)."""
    if not sentences:
        return Support(np.array([0, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.float64), -1, [])
    idf = idf or sentence_idf(sentences)
    sims = sentence_vecs @ claim_vec
    ranked = [int(i) for i in np.argsort(-sims)]
    top = ranked[:3]
    part_sims = (sentence_vecs @ part_vecs.T).max(axis=0) if len(part_vecs) else np.array([sims.max()])
    words = content_words(claim)
    top_text = " ".join(sentences[i] for i in ranked[:5])
    all_text = " ".join(sentences)

    def coverage(text: str) -> float:
        present = set(content_words(text))
        total = sum(idf(w) for w in words)
        return sum(idf(w) for w in words if w in present) / total if total else 1.0

    claim_numbers = numbers(claim)
    evidence_numbers = numbers(all_text)
    number_share = len(claim_numbers & evidence_numbers) / len(claim_numbers) if claim_numbers else 1.0
    best_numbers = numbers(" ".join(sentences[i] for i in top))
    number_conflict = float(bool(claim_numbers) and bool(best_numbers) and not (claim_numbers & best_numbers))
    claim_entities = entities(claim)
    lowered = fold(all_text).lower()
    entity_share = sum(e in lowered for e in claim_entities) / len(claim_entities) if claim_entities else 1.0
    negation_mismatch = float(has_negation(claim) != has_negation(sentences[ranked[0]]))
    feats = np.array(
        [sims[ranked[0]], float(np.mean(sims[top])), float(part_sims.min()), coverage(top_text), coverage(all_text),
         number_share, entity_share, negation_mismatch, number_conflict],
        dtype=np.float64,
    )
    return Support(feats, ranked[0], ranked)


@dataclass
class Calibration:
    """Logistic regression over standardised features."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    bias: float

    def logit(self, feats: np.ndarray) -> np.ndarray:
        return ((feats - self.mean) / self.scale) @ self.coef + self.bias

    def confidence(self, feats: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(feats)))

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(), "bias": self.bias}

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        return cls(np.array(data["mean"]), np.array(data["scale"]), np.array(data["coef"]), float(data["bias"]))


@dataclass
class SupportModel:
    """Confidence = P(the evidence is about the claim) x P(every detail of the claim is in it).

    The two factors are fitted on different data because each dataset teaches one of them:
    `relevant` on Climate-FEVER dev pairs (is this sentence evidence for the claim at all?),
    `complete` on WiCE dev claims (the article is always on topic; is every part supported?).
    Alone, `complete` would accept any claim without names or numbers; alone, `relevant` misses
    a wrong date in an on-topic sentence.
    """

    relevant: Calibration
    complete: Calibration

    def confidence(self, feats: np.ndarray) -> np.ndarray:
        return self.relevant.confidence(feats) * self.complete.confidence(feats)

    def save(self, path: Path, info: dict | None = None) -> None:
        data = {"features": FEATURES, "relevant": self.relevant.to_dict(), "complete": self.complete.to_dict(), "info": info or {}}
        path.write_text(json.dumps(data, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path = WEIGHTS_PATH) -> "SupportModel":
        data = json.loads(path.read_text())
        if data.get("features") != FEATURES or "relevant" not in data:
            raise ValueError(f"{path} was fitted on other features; refit with `python bench/verifier.py --fit`.")
        return cls(Calibration.from_dict(data["relevant"]), Calibration.from_dict(data["complete"]))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 3000, lr: float = 0.1, balanced: bool = True,
                 signs: np.ndarray | None = None) -> Calibration:
    """Gradient-descent logistic regression on standardised features, optionally class-balanced, with
    coefficients projected onto the given signs (monotone in each feature) after every step."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    weights = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9)) if balanced else np.ones(len(y))
    coef, bias = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ coef + bias)))
        g = weights * (p - y)
        coef -= lr * (z.T @ g / len(y) + l2 * coef / len(y))
        bias -= lr * g.mean()
        if signs is not None:
            coef = np.where(coef * signs < 0, 0.0, coef)
    return Calibration(mean, scale, coef, bias)


def verdict_of(confidence: float, features: np.ndarray, min_support: float) -> Verdict:
    """Supported at `min_support` or above; below it, contradicted when the closest evidence sentence
    is on the claim's topic (embedding similarity 0.6 or more) but flips its negation or its numbers."""
    feats = dict(zip(FEATURES, features))
    if confidence >= min_support:
        return Verdict.supported
    if feats["emb_best"] >= 0.6 and (feats["negation_mismatch"] or feats["number_conflict"]):
        return Verdict.contradicted
    return Verdict.unsupported


class Verifier:
    """Checks claims against passages; `check` returns the Claim tuple with a verbatim quote."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], calibration: SupportModel, min_support: float = 0.25, judge: Judge | None = None) -> None:
        self.embed = embed
        self.calibration = calibration
        self.min_support = min_support
        self.judge = judge

    @classmethod
    def from_settings(cls, settings, judge: Judge | None = None, embed: Callable[[list[str]], np.ndarray] | None = None) -> "Verifier":
        """`embed` defaults to a memoized embedder of its own: claims citing the same passage reuse
        its sentence vectors; pass the answer's shared one to reuse the reasoner's too."""
        from lantern.embedding import load_embedder, memoized

        return cls(embed or memoized(load_embedder(settings.embed_model)), SupportModel.load(), settings.min_support, judge)

    def check(self, claim: str, passages: list[Evidence], citations: list[int] | None = None) -> Claim:
        """Verify `claim` against the cited passages (1-based), or all passages when it cites none.
        A claim whose citations all point past the passages cites nothing that exists: it is
        unsupported, with that reason, and never re-targeted at passages it did not cite."""
        cited = [i for i in (citations or []) if 1 <= i <= len(passages)]
        if citations and not cited:
            return Claim(claim=claim, reason=nonexistent_citations(citations, len(passages)))
        chosen = [passages[i - 1] for i in cited] or passages
        candidates: list[tuple[Evidence, int, int]] = []
        for passage in chosen:
            candidates.extend((passage, a, b) for span in sentence_spans(passage.text) for a, b in unflagged_parts(passage, *span))
        record = Claim(claim=claim, citations=cited)
        flag = quoted_flag(claim, passages)
        if flag is not None:  # documents are data: an order to AI systems is never evidence, even verbatim
            return record.model_copy(update={"reason": f"quotes text flagged as an instruction to AI systems ({flag.reason})"})
        if not candidates:
            return record
        sentences = [p.text[a:b] for p, a, b in candidates]
        copy = copied_sentence(claim, sentences)
        if copy is not None:
            index, kind = copy
            return self._checked(record, candidates[index], sentences[index], *settled(kind))
        parts = claim_parts(claim)
        vecs = self.embed([claim] + parts + sentences)
        support = support_features(claim, vecs[0], vecs[1 : 1 + len(parts)], sentences, vecs[1 + len(parts) :])
        confidence = float(self.calibration.confidence(support.features))
        if self.judge is not None and support.features[FEATURES.index("coverage_top")] > 0:
            # Averaged in log-odds with the features, bounded; and never consulted for a claim none of
            # whose words are in the evidence: a judge refines support, it cannot invent it.
            p = min(max(self.judge(claim, sentences[support.best]), 1e-4), 1 - 1e-4)
            judged = max(-JUDGE_MAX_LOG_ODDS, min(JUDGE_MAX_LOG_ODDS, math.log(p / (1 - p))))
            confidence = 1 / (1 + math.exp(-(math.log(confidence / (1 - confidence)) + judged) / 2))
        verdict = verdict_of(confidence, support.features, self.min_support)
        return self._checked(record, candidates[support.best], sentences[support.best], confidence, verdict)

    @staticmethod
    def _checked(record: Claim, candidate: tuple[Evidence, int, int], quote: str, confidence: float, verdict: Verdict) -> Claim:
        """The claim with its quote, the quote's own lines in the source file, confidence and verdict."""
        passage, a, b = candidate
        start_line = passage.start_line + passage.text.count("\n", 0, a)
        end_line = passage.start_line + passage.text.count("\n", 0, b)
        return record.model_copy(
            update={"evidence": quote, "source": passage.source, "start_line": start_line,
                    "end_line": end_line, "confidence": round(confidence, 4), "verdict": verdict}
        )


MIN_QUOTED_WORDS = 8
"""A run of this many words shared with flagged text is a quote of it (fewer when the claim is shorter)."""


def unflagged_parts(passage: Evidence, start: int, end: int) -> list[tuple[int, int]]:
    """The parts of the passage's span [start, end) outside its flagged text, trimmed of space: a
    sentence with an order to AI systems planted in it (or glued to it, as a table row before a
    planted line is) keeps its own words as candidate evidence, never the planted ones."""
    if not passage.flags:
        return [(start, end)]
    from lantern.knowledge.injection import outside  # only when a passage holds flags: the verifier needs no KB otherwise

    return trimmed_spans(passage.text, list(outside(passage.flags, start, end)))


def quoted_flag(claim: str, passages: list[Evidence]):
    """The flag (lantern.records.Flag) whose text the claim quotes: the claim is a run of its words, or
    shares `MIN_QUOTED_WORDS` words in a row with it; None when it quotes no flagged text."""
    words = re.findall(r"[a-z0-9]+", fold(claim).lower())
    if len(words) < 3:
        return None
    need = min(MIN_QUOTED_WORDS, len(words))
    for passage in passages:
        for flag in passage.flags:
            flagged = re.findall(r"[a-z0-9]+", fold(passage.text[flag.start : flag.end]).lower())
            if longest_common_run(words, flagged) >= need:
                return flag
    return None


def longest_common_run(a: list[str], b: list[str]) -> int:
    """Length of the longest run of words the two lists share, in order and in a row."""
    best, previous = 0, [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def nonexistent_citations(numbers: list[int], n_passages: int) -> str:
    cited = ", ".join(f"[{n}]" for n in numbers)
    return f"cites {cited}, but only passages [1]-[{n_passages}] exist" if n_passages else f"cites {cited}, but no passage was retrieved"
