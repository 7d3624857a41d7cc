"""Verify (the loop stage): a Draft -> checked Claim tuples, one at a time, using the reusable verifier in lantern/verify.

This stage only splits the draft into claims, drops sentences that merely decline to answer,
marks claims whose every citation points at a passage that does not exist (unsupported, with
that reason: they are never checked against passages they did not cite), and asks the verifier
about each other claim against the passages it cites. Claims are yielded as each is checked, so
a reader sees them arrive.
"""

from __future__ import annotations

from typing import Iterator

from lantern.records import Claim, Draft, Evidence
from lantern.verify.claims import split_claims
from lantern.verify.support import nonexistent_citations


def is_refusal(text: str, markers: list[str]) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in markers)


def check_claims(draft: Draft, evidence: list[Evidence], verifier, refusal_markers: list[str]) -> Iterator[Claim]:
    for draft_claim in split_claims(draft.text, len(evidence)):
        if is_refusal(draft_claim.text, refusal_markers):
            continue
        if draft_claim.invalid_citations and not draft_claim.citations:
            yield Claim(claim=draft_claim.text, reason=nonexistent_citations(draft_claim.invalid_citations, len(evidence)))
            continue
        yield verifier.check(draft_claim.text, evidence, draft_claim.citations)

