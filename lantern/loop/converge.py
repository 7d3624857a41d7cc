"""Converge: checked claims -> the final answer text and status.

Supported claims are kept; the rest are dropped and listed as not supported by the documents.
Of the kept ones, those that answer the question make the answer and the others are listed as
related (`lantern.verify.relevance.judge`); the status says whether the answering claims cover
the question (`answered`), part of it (`partial`, with what is missing) or none of it
(`not_in_kb`), and sources that disagree are said so in the text. `better` picks the round with
more supported claims. This module knows nothing about models.
"""

from __future__ import annotations

from lantern.records import Claim, Conflict, Verdict


def partition(claims: list[Claim]) -> tuple[list[Claim], list[Claim]]:
    kept = [c for c in claims if c.verdict == Verdict.supported]
    return kept, [c for c in claims if c.verdict != Verdict.supported]


def feedback(dropped: list[Claim]) -> list[str]:
    return [f"{c.claim} ({c.verdict.value}, confidence {c.confidence:.2f})" for c in dropped]


def better(a: list[Claim], b: list[Claim]) -> list[Claim]:
    """The claim list with more supported claims (ties: the one with fewer unsupported)."""
    score = lambda cs: (len(partition(cs)[0]), -len(partition(cs)[1]))  # noqa: E731
    return b if score(b) > score(a) else a


def status_of(kept: list[Claim], dropped: list[Claim]) -> str:
    if not kept:
        return "not_in_kb"
    return "partial" if dropped else "answered"


def render(kept: list[Claim]) -> str:
    return " ".join(f"{c.claim} [{', '.join(map(str, c.citations))}]" if c.citations else c.claim for c in kept)


def conflict_sentence(conflict: Conflict) -> str:
    """'The sources disagree on the height: 227 m (a.md, line 3) and 230 m (b.md, line 5).'"""
    def where(v) -> str:
        lines = f"line {v.start_line}" if v.start_line == v.end_line else f"lines {v.start_line}-{v.end_line}"
        return f"{v.value} ({v.source.rsplit('/', 1)[-1]}, {lines})"

    shown = [where(v) for v in conflict.values]
    listed = ", ".join(shown[:-1]) + f" and {shown[-1]}" if len(shown) > 1 else shown[0]
    return f"The sources disagree on the {conflict.about}: {listed}."
