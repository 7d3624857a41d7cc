"""Converge: checked claims -> the final answer text and status.

Supported claims are kept; the rest are dropped and listed as not supported by the documents.
`should_retry` says whether another reasoning round with the verifier's feedback is worthwhile;
`better` picks the round with more supported claims. This module knows nothing about models.
"""

from __future__ import annotations

from lantern.records import Claim, Verdict


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
