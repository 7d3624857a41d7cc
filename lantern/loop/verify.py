"""Verify (the loop stage): a Draft -> checked Claim tuples, using the reusable verifier in lantern/verify.

This stage only splits the draft into claims, drops sentences that merely decline to answer, and
asks the verifier about each claim against the passages it cites.
"""

from __future__ import annotations

from lantern.records import Claim, Draft, Evidence
from lantern.verify.claims import split_claims


def is_refusal(text: str, markers: list[str]) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in markers)


def verify(draft: Draft, evidence: list[Evidence], verifier, refusal_markers: list[str]) -> list[Claim]:
    claims: list[Claim] = []
    for draft_claim in split_claims(draft.text, len(evidence)):
        if is_refusal(draft_claim.text, refusal_markers):
            continue
        claims.append(verifier.check(draft_claim.text, evidence, draft_claim.citations))
    return claims
