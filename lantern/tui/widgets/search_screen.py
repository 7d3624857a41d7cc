"""Search the knowledge base directly (`/search WORDS` or its key): ranked passages with score and
source:lines; Enter on one opens its source. The search runs in a thread worker (the embedder may
still be loading) that posts `SearchDone`; only the handler touches the widgets."""

from __future__ import annotations

import logging

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from lantern.tui.format import error_line, source_label
from lantern.tui.messages import Problem, SearchDone

log = logging.getLogger(__name__)


class SearchScreen(ModalScreen):
    BINDINGS = [Binding("escape", "dismiss", "Close search")]

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self.initial = query
        self.passages: list = []

    def compose(self) -> ComposeResult:
        with Vertical(id="search-box"):
            yield Input(self.initial, placeholder="search the knowledge base", id="search-query")
            yield Static("", id="search-state")
            yield OptionList(id="search-results")

    def on_mount(self) -> None:
        if self.initial.strip():
            self.run_search(self.initial)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.run_search(event.value)

    def run_search(self, query: str) -> None:
        self.query_one("#search-state", Static).update(Text(f"searching for {query!r}…", style="dim"))
        self.search(query)

    @work(thread=True, exclusive=True, group="search")
    def search(self, query: str) -> None:
        notices: list[str] = []
        try:
            passages = self.app.knowledge().search(query, notices=notices)
        except Exception as exc:  # a worker never takes the app down: the error is a notification
            log.warning("search failed", exc_info=True)
            self.post_message(Problem(error_line(exc)))
            return
        self.post_message(SearchDone(query, passages, notices))

    def on_search_done(self, message: SearchDone) -> None:
        message.stop()
        self.passages = message.passages
        results = self.query_one("#search-results", OptionList)
        results.clear_options()
        for n, passage in enumerate(message.passages, 1):
            label = Text.assemble((f"{n}. ", "bold"), (f"{passage.score:.3f} ", "dim"),
                                  (source_label(passage.source, passage.start_line, passage.end_line, 60), "cyan"))
            label.append("\n" + " ".join(passage.text.split())[:300], style="dim")
            results.add_option(Option(label))
        found = f"{len(message.passages)} passages for {message.query!r}" if message.passages else f"nothing found for {message.query!r}"
        self.query_one("#search-state", Static).update(Text(found, style="dim"))
        for line in message.notices:
            self.notify(f"note: {line}", severity="warning")
        if message.passages:
            results.highlighted = 0  # Enter opens the best passage at once
            results.focus()

    def on_problem(self, message: Problem) -> None:
        message.stop()  # shown here; the app would show it a second time
        self.query_one("#search-state", Static).update(Text(message.text, style="red"))
        self.notify(message.text, severity="error")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.app.open_passage(self.passages[event.option_index])
