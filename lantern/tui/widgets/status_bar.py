"""One line on what is answering and how fast: backend and model, DEEP/FAST, tok/s, the average
exit depth of the last answer, the knowledge base's size, and the session the chat is saved to.

Each field is reactive: a handler sets it and the bar redraws.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class StatusBar(Static):
    backend = reactive("")
    model = reactive("")
    mode = reactive("deep")
    tokens_per_second: reactive[float | None] = reactive(None)
    depth = reactive("")
    """The last answer's average exit step, or why there is none."""
    kb = reactive("KB: opening…")
    session = reactive("")

    def render(self) -> Text:
        sep = (" │ ", "dim")
        speed = f"{self.tokens_per_second:.1f} tok/s" if self.tokens_per_second is not None else "– tok/s"
        reasoner = self.backend if self.model == self.backend else f"{self.backend} · {self.model}"
        return Text.assemble(
            (reasoner, "bold"), sep,
            (self.mode.upper(), "bold magenta" if self.mode == "deep" else "bold cyan"), sep,
            speed, sep,
            self.depth or "exit depth –", sep,
            self.kb, sep,
            (f"session {self.session}", "dim"),
        )
