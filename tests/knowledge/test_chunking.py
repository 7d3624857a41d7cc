"""Chunks are verbatim line spans that follow the document's structure."""

from lantern.knowledge.chunking import chunk_text

GUIDE = """# Guide

Intro paragraph one.
Still intro.

## Install

Run the setup script.

```bash
./setup.sh

echo done
```

## Use

Ask a question.
"""


def _assert_verbatim(text, chunks):
    lines = text.split("\n")
    for chunk in chunks:
        span = "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        assert chunk.text in span, chunk
        if "\n" in chunk.text or len(chunk.text) == len(span):
            assert chunk.text == span


def test_markdown_sections_carry_heading_paths_and_exact_spans():
    chunks = chunk_text(GUIDE, "markdown", max_chars=1200, overlap_chars=100)
    _assert_verbatim(GUIDE, chunks)
    assert [c.heading for c in chunks] == ["Guide", "Guide > Install", "Guide > Use"]
    install = chunks[1]
    assert install.start_line == 6 and install.text.endswith("```")  # the fenced block stays whole
    assert "echo done" in install.text


def test_long_sections_are_cut_with_overlap_and_stay_verbatim():
    body = "\n".join(f"Line {i} says something about loop step {i % 4}." for i in range(200))
    text = "# Big\n\n" + body + "\n"
    chunks = chunk_text(text, "markdown", max_chars=400, overlap_chars=100)
    _assert_verbatim(text, chunks)
    assert len(chunks) > 10
    assert all(len(c.text) <= 400 for c in chunks)
    assert any(a.end_line >= b.start_line for a, b in zip(chunks, chunks[1:]))  # overlap
    covered = set()
    for c in chunks:
        covered.update(range(c.start_line, c.end_line + 1))
    assert covered >= set(range(3, 203))


def test_one_huge_line_is_cut_into_verbatim_substrings():
    line = " ".join(f"Sentence number {i} is here." for i in range(300))
    chunks = chunk_text(line, "text", max_chars=500, overlap_chars=50)
    assert len(chunks) > 5
    for c in chunks:
        assert c.start_line == c.end_line == 1 and c.text in line and len(c.text) <= 500


def test_rst_underlined_headings_open_sections():
    text = "Title\n=====\n\nFirst.\n\nPart\n----\n\nSecond.\n"
    chunks = chunk_text(text, "rst")
    _assert_verbatim(text, chunks)
    assert [c.heading for c in chunks] == ["Title", "Title > Part"]


def test_plain_text_has_no_headings_and_blank_text_has_no_chunks():
    assert chunk_text("\n\n  \n", "text") == []
    chunks = chunk_text("# not a heading in code\nx = 1\n", "code")
    assert chunks[0].heading == "" and chunks[0].start_line == 1
