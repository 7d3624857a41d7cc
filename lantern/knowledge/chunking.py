"""Text -> chunks that follow the document's structure and keep exact line spans.

A chunk is always a verbatim slice of the document text: whole lines `start_line..end_line`
(1-based, inclusive), except when a single line is longer than the size limit, in which case the
chunk is a verbatim substring of that line. Headings (Markdown '#', reStructuredText underlines)
open sections and give every chunk its heading path ('Guide > Install'); paragraphs (runs of
non-blank lines, a fenced code block counts as one) are packed into chunks up to `max_chars`;
a paragraph larger than that is cut at line boundaries, and consecutive cuts of one section
overlap by up to `overlap_chars` of whole lines.

This module knows nothing about files, embeddings or storage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


@dataclass(frozen=True)
class TextChunk:
    text: str
    start_line: int
    end_line: int
    heading: str


@dataclass
class _Block:
    start: int  # 0-based line index, inclusive
    end: int  # exclusive
    heading_path: tuple[str, ...]
    is_heading: bool = False


def chunk_text(text: str, fmt: str, max_chars: int = 1200, overlap_chars: int = 150) -> list[TextChunk]:
    """Cut `text` (a document of format `fmt`) into chunks of at most about `max_chars`."""
    lines = text.split("\n")
    blocks = _blocks(lines, fmt)
    chunks: list[TextChunk] = []
    current: list[_Block] = []

    def size(blocks_: list[_Block]) -> int:
        return sum(len(line) + 1 for b in blocks_ for line in lines[b.start : b.end])

    def flush() -> None:
        if current:
            chunks.append(_make_chunk(lines, current[0].start, current[-1].end, current[0].heading_path))
            current.clear()

    for block in blocks:
        if current and (block.is_heading or block.heading_path != current[0].heading_path):
            flush()
        block_size = size([block])
        if block_size > max_chars:
            flush()
            chunks.extend(_split_block(lines, block, max_chars, overlap_chars))
            continue
        if current and size(current) + block_size > max_chars:
            flush()
        current.append(block)
    flush()
    # A section holding only its heading line is kept only if nothing else carries that heading.
    return [c for c in chunks if c.text.strip()]


def _make_chunk(lines: list[str], start: int, end: int, heading_path: tuple[str, ...]) -> TextChunk:
    # Trim blank lines at both ends so spans point at text.
    while start < end - 1 and not lines[start].strip():
        start += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return TextChunk("\n".join(lines[start:end]), start + 1, end, " > ".join(heading_path))


def _blocks(lines: list[str], fmt: str) -> list[_Block]:
    """Headings and paragraphs, each with the heading path it sits under."""
    blocks: list[_Block] = []
    path: list[tuple[int, str]] = []  # (level, title)
    rst_levels: list[str] = []
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        heading = None
        if fmt in ("markdown", "html"):
            match = _MD_HEADING.match(line)
            if match:
                heading, span = (len(match.group(1)), match.group(2)), 1
        elif fmt == "rst" and i + 1 < n and _RST_UNDERLINE.match(lines[i + 1]) and len(lines[i + 1].strip()) >= len(line.strip()) > 0:
            char = lines[i + 1].strip()[0]
            if char not in rst_levels:
                rst_levels.append(char)
            heading, span = (rst_levels.index(char) + 1, line.strip()), 2
        if heading:
            level, title = heading
            path = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
            blocks.append(_Block(i, i + span, tuple(t for _, t in path), is_heading=True))
            i += span
            continue
        start = i
        if fmt in ("markdown", "html") and _MD_FENCE.match(line):
            fence = _MD_FENCE.match(line).group(1)
            i += 1
            while i < n and not lines[i].lstrip().startswith(fence):
                i += 1
            i = min(i + 1, n)
        else:
            while i < n and lines[i].strip() and not (fmt in ("markdown", "html") and (_MD_HEADING.match(lines[i]) or _MD_FENCE.match(lines[i]))):
                i += 1
        blocks.append(_Block(start, i, tuple(t for _, t in path)))
    # A heading joins the paragraph after it so no chunk is a bare title.
    merged: list[_Block] = []
    for block in blocks:
        if merged and merged[-1].is_heading and not block.is_heading and merged[-1].heading_path == block.heading_path:
            head = merged.pop()
            merged.append(_Block(head.start, block.end, block.heading_path, is_heading=True))
        else:
            merged.append(block)
    return merged


def _split_block(lines: list[str], block: _Block, max_chars: int, overlap_chars: int) -> list[TextChunk]:
    """Cut one oversized block at line boundaries, with overlapping whole lines."""
    out: list[TextChunk] = []
    start = block.start
    while start < block.end:
        if len(lines[start]) > max_chars:
            out.extend(_split_line(lines[start], start, block.heading_path, max_chars))
            start += 1
            continue
        end, total = start, 0
        while end < block.end and len(lines[end]) <= max_chars and total + len(lines[end]) + 1 <= max_chars:
            total += len(lines[end]) + 1
            end += 1
        out.append(_make_chunk(lines, start, end, block.heading_path))
        if end >= block.end:
            break
        back, carried = end, 0
        while back - 1 > start and carried + len(lines[back - 1]) + 1 <= overlap_chars and len(lines[end]) <= max_chars:
            back -= 1
            carried += len(lines[back]) + 1
        start = back
    return out


def _split_line(line: str, index: int, heading_path: tuple[str, ...], max_chars: int) -> list[TextChunk]:
    """Cut one very long line into verbatim substrings at sentence (else word) boundaries."""
    pieces: list[TextChunk] = []
    pos = 0
    while pos < len(line):
        end = min(pos + max_chars, len(line))
        if end < len(line):
            window = line[pos:end]
            cut = max((m.end() for m in _SENTENCE_END.finditer(window)), default=0)
            if cut < max_chars // 3:
                cut = window.rfind(" ") + 1
            if cut > 0:
                end = pos + cut
        piece = line[pos:end].strip()
        if piece:
            pieces.append(TextChunk(piece, index + 1, index + 1, " > ".join(heading_path)))
        pos = end
    return pieces
