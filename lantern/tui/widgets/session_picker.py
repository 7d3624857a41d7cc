"""Pick a named session to continue, or name a new one: the same files `lantern ask --session`
uses (LANTERN_HOME/sessions/NAME.jsonl), newest first with their number of turns. Dismisses with
the chosen name, or None."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option


def saved_sessions(home: Path) -> list[tuple[str, int, float]]:
    """(name, turns, modified) of every session file, newest first."""
    found = []
    for path in (home / "sessions").glob("*.jsonl"):
        try:
            stat, lines = path.stat(), path.read_text(encoding="utf-8").count("\n")
        except (OSError, UnicodeDecodeError):
            continue
        found.append((path.stem, lines, stat.st_mtime))
    return sorted(found, key=lambda s: -s[2])


class SessionPicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, home: Path, current: str) -> None:
        super().__init__()
        self.home, self.current = home, current

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Static(Text(f"Sessions in {self.home / 'sessions'} (current: {self.current})", style="bold"))
            yield Input(placeholder="a new session name, or pick one below", id="session-name")
            options = []
            for name, turns, modified in saved_sessions(self.home):
                label = Text.assemble((name, "bold"), (f"  {turns} turns, {time.strftime('%Y-%m-%d %H:%M', time.localtime(modified))}", "dim"))
                options.append(Option(label, id=name))
            yield OptionList(*options, id="session-list")
            if not options:
                yield Static("no saved sessions yet: an answered question saves the chat", classes="dim")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.dismiss(event.value.strip())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)
