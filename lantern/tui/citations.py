"""Citation marks in answer text as Markdown links: `[2]` becomes a link to `cite:2`, so the
conversation can take a click on it to the passage it cites (`[1, 3]` gives one link per number).

`Linker` does the same for text that arrives in pieces: a mark split across tokens (`[1` then
`2]`) is held back until it closes, so a half-written mark is never linked wrongly.

Pure: knows nothing about widgets; `passage_number(href)` reads a link back.
"""

from __future__ import annotations

import re

_MARK = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_OPEN_TAIL = re.compile(r"\[[\d,\s]*$")
SCHEME = "cite:"


def _link(match: re.Match) -> str:
    numbers = [n.strip() for n in match.group(1).split(",")]
    return r"\[" + ", ".join(f"[{n}]({SCHEME}{n})" for n in numbers) + r"\]"


def linkify(text: str) -> str:
    """`text` with every citation mark made a link."""
    return _MARK.sub(_link, text)


def passage_number(href: str) -> int | None:
    """The passage number a citation link points at; None for any other link."""
    if href.startswith(SCHEME) and href[len(SCHEME):].isdigit():
        return int(href[len(SCHEME):])
    return None


class Linker:
    """Linkifies a stream of fragments; `flush()` gives back whatever is still held."""

    def __init__(self) -> None:
        self.held = ""

    def feed(self, fragment: str) -> str:
        text = self.held + fragment
        tail = _OPEN_TAIL.search(text)
        cut = tail.start() if tail else len(text)
        self.held = text[cut:]
        return linkify(text[:cut])

    def flush(self) -> str:
        text, self.held = self.held, ""
        return linkify(text)
