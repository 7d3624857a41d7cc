"""The metrics `lantern eval` and the benchmarks in bench/ report, as plain functions.

Classification: `balanced_accuracy`, `ece` (expected calibration error), `macro_f1`, `recall_of`.
Retrieval: `hit_at_k`, `share_at_k`, `recall_at_k`. Answers: `citation_validity` (every quote
verbatim at its lines, from a retrieved passage). Reasoning answers: `gsm8k_gold` / `last_number`
/ `same_number`, `last_boxed` / `normalize_math` / `math_equal` (MATH-500), `bbh_answer` /
`bbh_equal` (BIG-Bench Hard). Uncertainty: `bootstrap_ci` (percentile bootstrap over items).

Rates are fractions in [0, 1] (the benches print them as percentages). Every function is pure
except `citation_validity`, which reads the cited files. This module knows nothing about models,
suites or how the numbers are stored.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

# --- classification ------------------------------------------------------------------------------


def balanced_accuracy(y, pred) -> float:
    """Mean of the true-positive and true-negative rates of binary labels (1 = positive); a class
    with no items counts its rate as 0, as bench/verifier.py always did."""
    y, pred = np.asarray(y), np.asarray(pred)
    tpr = ((pred == 1) & (y == 1)).sum() / max((y == 1).sum(), 1)
    tnr = ((pred == 0) & (y == 0)).sum() / max((y == 0).sum(), 1)
    return float((tpr + tnr) / 2)


def ece(y, p, bins: int = 10) -> float:
    """Expected calibration error of probabilities `p` for binary labels `y`: the item-weighted mean
    |accuracy - confidence| over equal-width bins of p (the last bin includes 1.0)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (p >= lo) & (p < hi if hi < 1 else p <= hi)
        if mask.any():
            total += mask.sum() / len(y) * abs(y[mask].mean() - p[mask].mean())
    return float(total)


def macro_f1(gold: Sequence, pred: Sequence, labels: Sequence) -> float:
    """Unweighted mean over `labels` of each label's F1 (0 for a label never predicted correctly)."""
    scores = []
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred))
        fp = sum(g != label and p == label for g, p in zip(gold, pred))
        fn = sum(g == label and p != label for g, p in zip(gold, pred))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))


def recall_of(gold: Sequence, pred: Sequence, label) -> float | None:
    """Share of the items labelled `label` that were predicted `label` (None without such items)."""
    hits = [p == label for g, p in zip(gold, pred) if g == label]
    return sum(hits) / len(hits) if hits else None


# --- retrieval -----------------------------------------------------------------------------------


def hit_at_k(ranked: Sequence, gold: Iterable, k: int) -> bool:
    """Whether any gold id is among the first k ranked ids."""
    return bool(set(ranked[:k]) & set(gold))


def share_at_k(ranked: Sequence, gold: Iterable, k: int) -> float:
    """Share of the gold ids found among the first k ranked ids (WiCE: gold sentences in the top 10)."""
    gold = set(gold)
    return len(gold & set(ranked[:k])) / len(gold) if gold else 0.0


def recall_at_k(rankings: Sequence[Sequence], golds: Sequence[Iterable], k: int) -> float:
    """Share of queries with a gold id in their top k (Climate-FEVER, PubMedQA's own abstract)."""
    return float(np.mean([hit_at_k(r, g, k) for r, g in zip(rankings, golds)])) if rankings else 0.0


# --- answers -------------------------------------------------------------------------------------


def citation_validity(answer) -> tuple[int, int]:
    """(valid, checked) over an Answer's claims, kept and dropped, that quote a file (tool results
    are not files): a claim is valid when its evidence is verbatim at its stated lines of its source
    file and inside a passage the answer retrieved from that source."""
    shown = {(e.source, e.text) for e in answer.evidence}
    good = total = 0
    for claim in list(answer.claims) + list(answer.dropped):
        if not claim.source or claim.source.startswith("tool:"):
            continue
        total += 1
        try:
            lines = Path(claim.source).read_text(encoding="utf-8").split("\n")
        except OSError:
            continue  # a source that cannot be read cannot be checked: invalid
        verbatim = claim.evidence in "\n".join(lines[claim.start_line - 1 : claim.end_line])
        retrieved = any(source == claim.source and claim.evidence in text for source, text in shown)
        good += verbatim and retrieved
    return good, total


def contains_fact(text: str, fact: str) -> bool:
    """Whether `fact` appears in `text`, case, spacing and thousands separators aside ("49,152" is
    "49152"; "4 times" is "4  times")."""
    def squash(s: str) -> str:
        return re.sub(r"(?<=\d),(?=\d{3})", "", " ".join(s.lower().split()))

    return squash(fact) in squash(text)


# --- reasoning answers ---------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\$?\.\d+")


def number_key(text: str) -> str | None:
    """A written number as one canonical string: "$1,200.00" -> "1200", "-3.50" -> "-3.5", ".5" -> "0.5";
    None when `text` holds no number."""
    match = _NUMBER.search(text.replace("\u2212", "-"))
    if not match:
        return None
    raw = match.group().replace("$", "").replace(",", "")
    try:
        value = Fraction(raw)
    except ValueError:
        return None
    if value.denominator == 1:
        return str(value.numerator)
    return format(float(value), ".10g")


def last_number(text: str) -> str | None:
    """The last number written in `text`, canonical (see `number_key`), or None."""
    found = _NUMBER.findall(text.replace("\u2212", "-"))
    return number_key(found[-1]) if found else None


def gsm8k_gold(answer: str) -> str | None:
    """GSM8K's gold: the number after `####` in the reference solution."""
    _, sep, tail = answer.rpartition("####")
    return number_key(tail) if sep else None


def gsm8k_prediction(output: str) -> str | None:
    """The model's answer: the number after its last `####` when it wrote one, else its last number."""
    _, sep, tail = output.rpartition("####")
    if sep and number_key(tail) is not None:
        return number_key(tail)
    return last_number(output)


def same_number(a: str | None, b: str | None) -> bool:
    """Both are numbers and equal (as canonical keys, which already ignore $ , and trailing zeros)."""
    return a is not None and b is not None and a == b


def last_boxed(text: str) -> str | None:
    r"""The content of the last \boxed{...} (or \fbox{...}) in `text`, braces matched; None without one."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        rest = text[start + len("\\boxed"):].strip()  # \boxed 5
        return rest.split("$")[0].strip() or None
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i]
    return None  # unbalanced: cut off by the token limit


def math_prediction(output: str) -> str | None:
    r"""The model's MATH answer: the last \boxed{} content, else the last number it wrote."""
    boxed = last_boxed(output)
    return boxed if boxed is not None else last_number(output)


_TEXT_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\{([^{}]*)\}")
_UNIT_WORDS = re.compile(r"\\?(?:text\{)?\s*(?:degrees?|cm|meters?|inches|inch|feet|units?|dollars?|cents?|square|sq)\b\}?")


def normalize_math(answer: str) -> str:
    r"""A MATH answer in one canonical spelling, simply: spaces, `\left`/`\right`, `\!`, `$`, `^\circ`,
    `\%`, text wrappers and common unit words out; `\dfrac`/`\tfrac` -> `\frac`; `\frac12` ->
    `\frac{1}{2}`; `a/b` of two integers -> `\frac{a}{b}`; `x = 3` -> `3`; a trailing `.` and
    leading `0` of `0.5` dropped. Not a symbolic algebra system: `\frac{2}{4}` stays unequal to
    `\frac{1}{2}` here (`math_equal` compares numbers by value)."""
    s = answer.strip()
    s = s.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\,", "").replace("\\;", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("$", "")
    s = s.replace("^\\circ", "").replace("^{\\circ}", "").replace("\\circ", "").replace("\\%", "").replace("%", "")
    s = _TEXT_WRAPPERS.sub(r"\1", s)
    s = _UNIT_WORDS.sub("", s)
    s = re.sub(r"^[a-zA-Z]\s*=\s*", "", s.strip())  # "x = 3" -> "3"
    s = "".join(s.split()).rstrip(".")
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\{([^{}]+)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    if re.fullmatch(r"-?\d+/\d+", s):
        sign, (num, den) = ("-" if s.startswith("-") else ""), s.lstrip("-").split("/")
        s = f"{sign}\\frac{{{num}}}{{{den}}}"
    s = re.sub(r"(?<![\d.])0\.(\d)", r".\1", s)
    s = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", s)  # 1,000 -> 1000 (not the comma of "(1,2)")
    return s


def _math_value(s: str) -> Fraction | None:
    """The value of a normalized answer that is a plain number or \\frac{int}{int}, else None."""
    frac = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s)
    try:
        if frac:
            value = Fraction(int(frac.group(2)), int(frac.group(3)))
            return -value if frac.group(1) else value
        if re.fullmatch(r"-?(?:\d+\.?\d*|\.\d+)", s):
            return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None
    return None


def math_equal(prediction: str | None, gold: str) -> bool:
    """Equal after `normalize_math`, or both plain numbers / integer fractions of the same value."""
    if prediction is None:
        return False
    a, b = normalize_math(prediction), normalize_math(gold)
    if a == b:
        return True
    va, vb = _math_value(a), _math_value(b)
    return va is not None and vb is not None and va == vb


def bbh_answer(output: str) -> str | None:
    """The text after the last "So the answer is" (BBH's chain-of-thought format), up to the end of
    its line, without a final full stop; None when the model never said it."""
    _, sep, tail = output.rpartition("So the answer is")
    if not sep:
        _, sep, tail = output.rpartition("the answer is")
    if not sep:
        return None
    return tail.strip().split("\n")[0].strip().rstrip(".").strip()


def bbh_equal(prediction: str | None, target: str) -> bool:
    """Exact match, case and surrounding space aside; an option letter matches with or without its
    parentheses ("(B)" = "B"), and a prediction that starts with the option, "(B) 12/25/1937", counts."""
    if prediction is None:
        return False
    p, t = prediction.strip().lower(), target.strip().lower()
    if p == t:
        return True
    option = re.fullmatch(r"\(([a-z])\)", t)
    if option:
        return re.match(rf"\(?{option.group(1)}\)?(?:\s|$|[.:,])", p + " ") is not None
    return False


# --- uncertainty ---------------------------------------------------------------------------------


def bootstrap_ci(values: Sequence, stat: Callable[[list], Any], n: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of `stat` over `values` (items resampled with replacement, `n`
    times, seeded). Resamples where `stat` is None or not finite are skipped; None when fewer than
    half of them give a value, or there are no values."""
    values = list(values)
    if not values:
        return None
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(n):
        sample = [values[i] for i in rng.integers(0, len(values), len(values))]
        value = stat(sample)
        if value is not None and math.isfinite(value):
            estimates.append(float(value))
    if len(estimates) < n / 2:
        return None
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(estimates, [tail, 100 - tail])
    return float(lo), float(hi)
