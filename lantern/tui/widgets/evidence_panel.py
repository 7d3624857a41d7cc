"""The passages the current answer was shown, numbered as the model cites them: [n], score,
source:lines, and the start of the text. Tool results that joined the evidence come in under the
number they were given. Selecting one posts `EvidencePanel.Chosen`; `point_at(n)` highlights the
passage a citation mark names.
"""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from lantern.tui.format import source_label

PREVIEW = 160


class EvidencePanel(OptionList):
    class Chosen(Message):
        def __init__(self, passage) -> None:
            super().__init__()
            self.passage = passage

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.passages: list = []

    def show(self, passages: list) -> None:
        """Show `passages`: the list itself, so passages added later join the answer's own list."""
        self.passages = passages
        self.clear_options()
        self.add_options([self._option(n, passage) for n, passage in enumerate(passages, 1)])

    def add(self, passage) -> None:
        self.passages.append(passage)
        self.add_option(self._option(len(self.passages), passage))

    @staticmethod
    def _option(n: int, passage) -> Option:
        label = Text.assemble((f"[{n}] ", "bold"), (f"{passage.score:.3f} ", "dim"),
                              (source_label(passage.source, passage.start_line, passage.end_line, 30), "cyan"))
        preview = " ".join(passage.text.split())
        label.append("\n" + (preview[:PREVIEW] + ("…" if len(preview) > PREVIEW else "")), style="dim")
        return Option(label, id=str(n))

    def add_tool_result(self, event) -> None:
        """A successful tool result joins as the passage number the loop gave it."""
        from lantern.records import Evidence

        self.add(Evidence(chunk_id=f"tool-{event.evidence_number}", source=f"tool:{event.call.name}", text=event.content,
                          start_line=0, end_line=0, score=0.0))

    def point_at(self, number: int) -> bool:
        """Highlight passage `number`; False when this answer has no such passage."""
        if not 1 <= number <= len(self.passages):
            return False
        self.highlighted = number - 1
        return True

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Chosen(self.passages[event.option_index]))
