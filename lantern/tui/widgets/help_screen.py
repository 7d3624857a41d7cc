"""The help screen: every key of the chat with what it does (read from the App's BINDINGS, so it
cannot drift from the footer), the slash commands, and what each pane shows."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from lantern.tui import depth

COMMANDS = [("/search WORDS", "search the knowledge base directly; pick a passage to open its source"),
            ("/session [NAME]", "switch to a session (a new one when NAME is new); no NAME lists them")]
PANES = [("conversation", "the answer streams in; [n] marks are links to passage n; dropped claims end up struck through"),
         ("claims", "each claim with its confidence, verdict and source:lines; Enter opens the source at the quote"),
         ("evidence", "the passages the model was shown, with scores; Enter opens one"),
         ("tool calls", "tool, arguments, validation (the error when rejected), result, time"),
         ("stage bar", "the loop's stage with its elapsed time; status bar: backend, model, mode, tok/s, depth, KB size")]


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,f1", "dismiss", "Close help")]

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        for binding in self.app.BINDINGS:
            keys.add_row(Text(self.app.get_key_display(binding), style="bold"), Text(binding.tooltip or binding.description))
        for command, what in COMMANDS:
            keys.add_row(Text(command, style="bold"), Text(what))
        panes = Table.grid(padding=(0, 2))
        for name, what in PANES:
            panes.add_row(Text(name, style="bold"), Text(what))
        with VerticalScroll(id="help-box"):
            yield Static(Text("Keys", style="bold underline"))
            yield Static(keys)
            yield Static(Text("\nWhat you see", style="bold underline"))
            yield Static(panes)
            yield Static(Text.assemble("\n", depth.legend(), f"\n(for a model without loops: {depth.NO_DEPTH})"))
            yield Static(Text("\nEscape closes this screen.", style="dim"))
