"""A source file opened at the lines a claim quotes (or a passage spans), the quote highlighted.

The text is the one the knowledge base cut its chunks from (for HTML and PDF, the extracted
text, whose lines the spans count), read by the caller and handed in; the viewer selects the
verbatim quote in a read-only TextArea, or the whole span when the quote cannot be found as
written, and scrolls it to the middle of the screen. Escape closes it.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, TextArea
from textual.widgets.text_area import Selection


def quote_span(text: str, start_line: int, end_line: int, quote: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(row, column) of the start and end of `quote` within lines start..end (1-based); the whole
    span when the quote is not there verbatim."""
    lines = text.split("\n")
    first, last = max(start_line, 1) - 1, min(max(end_line, start_line), len(lines)) - 1
    block = "\n".join(lines[first:last + 1])
    at = block.find(quote) if quote else -1
    if at < 0:
        return (first, 0), (last, len(lines[last]) if 0 <= last < len(lines) else 0)

    def location(offset: int) -> tuple[int, int]:
        before = block[:offset].split("\n")
        return first + len(before) - 1, len(before[-1])

    return location(at), location(at + len(quote))


class SourceViewer(ModalScreen):
    BINDINGS = [Binding("escape,q", "dismiss", "Close source")]

    def __init__(self, path: str, text: str, start_line: int, end_line: int, quote: str = "", title: str = "") -> None:
        super().__init__()
        self.path, self.text = path, text
        self.start_line, self.end_line, self.quote, self.title_text = start_line, end_line, quote, title

    def compose(self) -> ComposeResult:
        with Vertical(id="source-box"):
            span = f"{self.start_line}" if self.start_line == self.end_line else f"{self.start_line}-{self.end_line}"
            yield Static(Text.assemble((f"{self.path}:{span}", "bold cyan"), ("  " + self.title_text, "")), id="source-title")
            yield TextArea(self.text, read_only=True, show_line_numbers=True, soft_wrap=False, id="source-text")
        yield Footer()

    def on_mount(self) -> None:
        area = self.query_one(TextArea)
        start, end = quote_span(self.text, self.start_line, self.end_line, self.quote)
        area.selection = Selection(start, end)
        area.focus()
        self.call_after_refresh(self._scroll, start[0])

    def _scroll(self, row: int) -> None:
        area = self.query_one(TextArea)
        area.scroll_to(y=max(0, row - area.scrollable_content_region.height // 3), animate=False)
