"""Answer text -> atomic claims with the passages they cite; text -> sentence spans.

Citations are parsed leniently because small models are sloppy: `[1]`, `[1, 3]`, `[1-2]`,
`[^2]`, `[Source 2]`, `【2】` all count, and a citation written after the full stop belongs to the
sentence before it. A number outside 1..n_passages is never kept as a citation (it is listed in
`invalid_citations`), so a claim can only ever cite a passage that was retrieved.

This module knows nothing about whether a claim is true.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CITATION = re.compile(r"[\[【]\s*(?:\^|source|passage|doc(?:ument)?)?\s*(\d+(?:\s*(?:[,;]|-|–|and)\s*\^?\d+)*)\s*[\]】]", re.IGNORECASE)
_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "dr", "mr", "mrs", "ms", "prof", "fig", "no", "approx", "cf", "al", "st", "jr", "sr", "inc", "ltd", "u.s", "a.m", "p.m"}
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s+|$)|\n\s*\n|\n(?=\s*(?:[-*+]|\d+[.)])\s)|\n(?=#)")


@dataclass
class DraftClaim:
    text: str
    """The claim without its citation markers."""
    citations: list[int] = field(default_factory=list)
    """Cited passages, 1-based, all within 1..n_passages."""
    invalid_citations: list[int] = field(default_factory=list)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of `text`, trimmed of surrounding space."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if match.group().startswith(".") and _is_abbreviation_or_number(text, match.start()):
            continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    return trimmed_spans(text, spans)


def trimmed_spans(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans without their surrounding space, dropping those with no letter or digit left."""
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a and any(ch.isalnum() for ch in text[a:b]):
            out.append((a, b))
    return out


def _is_abbreviation_or_number(text: str, dot: int) -> bool:
    word = re.search(r"([A-Za-z.]+)$", text[:dot])
    if word and word.group(1).lower().strip(".") in _ABBREVIATIONS:
        return True
    if word and len(word.group(1)) == 1 and word.group(1).isupper():  # an initial: "J. Smith"
        return True
    return dot + 1 < len(text) and text[dot + 1].isdigit()


def split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def parse_citations(text: str) -> list[int]:
    numbers: list[int] = []
    for match in _CITATION.finditer(text):
        body = match.group(1)
        for part in re.split(r"\s*(?:[,;]|and)\s*", body):
            part = part.replace("^", "").strip()
            if re.fullmatch(r"\d+\s*[-–]\s*\d+", part):
                lo, hi = (int(x) for x in re.split(r"[-–]", part))
                if 0 < hi - lo < 20:
                    numbers.extend(range(lo, hi + 1))
                    continue
            numbers.extend(int(x) for x in re.findall(r"\d+", part))
    return list(dict.fromkeys(numbers))


def strip_citations(text: str) -> str:
    text = _CITATION.sub("", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def split_claims(text: str, n_passages: int) -> list[DraftClaim]:
    """The answer's claims (one per sentence), each with the valid passage numbers it cites."""
    # "It stops.[2] Next" -> "It stops [2]. Next": a citation after the full stop cites that sentence.
    text = re.sub(r"([.!?])((?:\s*(?:" + _CITATION.pattern + r"))+)", r"\2\1", text, flags=re.IGNORECASE)
    pieces = split_sentences(text)
    claims: list[DraftClaim] = []
    for piece in pieces:
        lead = re.match(r"^(\s*(?:" + _CITATION.pattern + r")\s*)+", piece, re.IGNORECASE)
        if lead and claims:  # "... stops. [2] Next sentence": [2] belongs to the previous claim
            _add_citations(claims[-1], parse_citations(lead.group()), n_passages)
            piece = piece[lead.end() :]
        body = strip_citations(piece)
        if not re.search(r"[A-Za-z0-9]", body):
            continue
        body = re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", body).lstrip("# ").strip()
        claim = DraftClaim(body)
        _add_citations(claim, parse_citations(piece), n_passages)
        claims.append(claim)
    return claims


def _add_citations(claim: DraftClaim, numbers: list[int], n_passages: int) -> None:
    for number in numbers:
        target = claim.citations if 1 <= number <= n_passages else claim.invalid_citations
        if number not in target:
            target.append(number)
