"""Claim verification, shared by the answer loop and `lantern eval`: claims.py splits answers into
cited claims; support.py scores each claim against its evidence and calibrates the confidence."""

from lantern.verify.claims import DraftClaim, split_claims
from lantern.verify.support import Verifier

__all__ = ["DraftClaim", "Verifier", "split_claims"]
