"""Files -> text: one reader per format, and the reasons a file is skipped.

Markdown, reStructuredText, plain text and source code are read as UTF-8 text (BOM tolerated,
line endings normalised to '\n'), so line numbers are the file's own. HTML is reduced to its
visible text, with headings kept as Markdown '#' lines so the chunker sees the structure; PDF is
read from its text layer with pypdf, one page after another. For those two formats line numbers
refer to the extracted text, which the knowledge base stores next to the chunks so that every
quote can still be checked verbatim.

This module knows nothing about chunking, embeddings or storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdx"}
RST_SUFFIXES = {".rst"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
PDF_SUFFIXES = {".pdf"}
TEXT_SUFFIXES = {".txt", ".text", ".log", ".csv", ".tsv"}
CODE_SUFFIXES = {
    ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".java", ".kt", ".scala", ".c", ".h", ".cc", ".cpp",
    ".hpp", ".cs", ".go", ".rs", ".rb", ".php", ".swift", ".m", ".sh", ".bash", ".zsh", ".ps1", ".sql",
    ".r", ".jl", ".lua", ".pl", ".hs", ".ml", ".ex", ".exs", ".clj", ".dart", ".css", ".scss", ".tex",
    ".toml", ".yaml", ".yml", ".json", ".ini", ".cfg", ".conf", ".xml", ".proto", ".graphql", ".ipynb",
}
KNOWN_NAMES = {"readme", "license", "makefile", "dockerfile", "changelog", "notice", "authors"}


class SkipFile(Exception):
    """A file that cannot be ingested; the message is the one-line reason shown to the user."""


@dataclass(frozen=True)
class Document:
    path: Path
    text: str
    """The text the chunks are cut from; '\n' line endings."""
    format: str
    """markdown, rst, html, pdf, code or text."""


def format_of(path: Path) -> str | None:
    """The reader format for a path, or None when Lantern does not ingest that kind of file."""
    suffix = path.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    if suffix in RST_SUFFIXES:
        return "rst"
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in PDF_SUFFIXES:
        return "pdf"
    if suffix in CODE_SUFFIXES:
        return "code"
    if suffix in TEXT_SUFFIXES or (not suffix and path.name.lower() in KNOWN_NAMES):
        return "text"
    return None


def read_document(path: Path, max_bytes: int) -> Document:
    """Read one file for ingestion, or raise SkipFile with the reason."""
    if format_of(path) is None:
        raise SkipFile(f"unsupported file type {path.suffix or '(no extension)'!r}")
    return parse_document(path, read_bytes(path, max_bytes))


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """A file's bytes, or SkipFile when it is larger than `max_bytes` or cannot be read."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SkipFile(f"too large ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB; raise max_file_mb to include it)")
        return path.read_bytes()
    except PermissionError:
        raise SkipFile("permission denied") from None
    except OSError as exc:
        raise SkipFile(f"unreadable ({exc.strerror or exc})") from None


def parse_document(path: Path, raw: bytes) -> Document:
    """Turn a file's bytes, already read, into text, or raise SkipFile with the reason."""
    fmt = format_of(path)
    if fmt is None:
        raise SkipFile(f"unsupported file type {path.suffix or '(no extension)'!r}")
    if fmt == "pdf":
        text = _pdf_text(raw)
    else:
        text = _decode(raw)
        if fmt == "html":
            text = _html_text(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise SkipFile("no text in file")
    return Document(path=path, text=text, format=fmt)


def _decode(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise SkipFile("undecodable UTF-16 text") from None
    if b"\x00" in raw[:8192]:
        raise SkipFile("binary file (contains NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipFile(f"not valid UTF-8 (bad byte at offset {exc.start}); convert it to UTF-8") from None


def _html_text(markup: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg", "head"]):
        tag.decompose()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            heading.replace_with(f"\n\n{'#' * level} {heading.get_text(' ', strip=True)}\n\n")
    for block in soup.find_all(["p", "div", "li", "tr", "br", "pre", "section", "article", "table"]):
        block.insert_after("\n")
    lines = [" ".join(line.split()) for line in soup.get_text().splitlines()]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"


def _pdf_text(raw: bytes) -> str:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise SkipFile("encrypted PDF; decrypt it first")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise SkipFile(f"corrupt PDF ({exc.__class__.__name__}: {str(exc)[:80]})") from None
    text = "\n\n".join(page for page in pages if page)
    if not text.strip():
        raise SkipFile("PDF has no text layer (scanned?); run OCR on it first")
    return text + "\n"
