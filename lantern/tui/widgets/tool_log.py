"""Every tool call of the current answer as it happens: the tool and its arguments, whether the
call passed validation (the error when it was rejected), then its result and how long it took."""

from __future__ import annotations

import json

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

RESULT_CHARS = 200


class ToolLog(VerticalScroll, can_focus=True):
    def on_mount(self) -> None:
        self.entries: list[tuple[Static, object, Text]] = []  # (its line, the valid call, its text) in call order
        self.clear()

    def clear(self) -> None:
        self.entries = []
        self.remove_children()
        self.mount(Static("no tool calls", classes="empty"))

    def call(self, event) -> None:
        if not self.entries:
            self.remove_children()
        text = Text.assemble((event.call.name if event.call else "(unreadable call)", "bold"), " ",
                             json.dumps(event.call.arguments, ensure_ascii=False) if event.call else event.raw)
        if event.valid:
            text.append("\n  ✓ valid", style="green")
        else:
            text.append(f"\n  ✗ rejected: {event.error}", style="red")
        line = Static(text, classes="tool-call")
        self.entries.append((line, event.call if event.valid else None, text))
        self.mount(line)
        line.scroll_visible()

    def result(self, event) -> None:
        """Complete the latest unanswered entry of this call with its result."""
        for i in reversed(range(len(self.entries))):
            line, call, text = self.entries[i]
            if call is not None and call == event.call:
                self.entries[i] = (line, None, text)  # answered: a repeat of the call gets its own entry
                text.append("\n  → ", style="dim")
                content = " ".join(event.content.split())
                text.append(content[:RESULT_CHARS] + ("…" if len(content) > RESULT_CHARS else ""),
                            style="red" if event.is_error else "")
                text.append(f"  ({event.seconds:.2f}s" + (f", passage [{event.evidence_number}])" if event.evidence_number else ")"),
                            style="dim")
                line.update(text)
                return
