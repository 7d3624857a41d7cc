"""The stage the answer loop is in, with elapsed time.

While an answer runs the bar ticks five times a second from its own clock, so a model writing one
token a second (or loading its weights) never looks frozen: the current stage's seconds keep
counting. Finished stages show the seconds their `stage` events reported; when the answer is done
the bar shows the answer's own timings, so what stays on screen comes from the loop.
"""

from __future__ import annotations

from time import monotonic

from rich.text import Text
from textual.widgets import Static

from lantern.events import STAGES



class StageBar(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.status = "idle"  # idle, running, cancelling, or the final status
        self.began = 0.0
        self.current: str | None = None
        self.current_since = 0.0
        self.done: dict[str, float] = {}
        self.total: float | None = None

    def on_mount(self) -> None:
        self._ticker = self.set_interval(0.2, self.refresh, pause=True)

    def begin(self) -> None:
        self.status, self.began, self.current, self.done, self.total = "running", monotonic(), None, {}, None
        self._ticker.resume()
        self.refresh()

    def stage(self, event) -> None:
        if event.state == "started":
            self.current, self.current_since = event.name, monotonic()
        else:
            self.done[event.name] = self.done.get(event.name, 0.0) + event.seconds
            self.current = None
        self.refresh()

    def cancelling(self) -> None:
        if self.status == "running":
            self.status = "cancelling"
            self.refresh()

    def end(self, status: str, timings: dict[str, float] | None = None) -> None:
        """The answer is over: show its final timings (None when the loop failed)."""
        self._ticker.pause()
        self.status, self.current = status, None
        if timings is not None:
            self.done = {k: v for k, v in timings.items() if k in STAGES}
            self.total = timings.get("total")
        self.refresh()

    def reset(self) -> None:
        self._ticker.pause()
        self.status, self.current, self.done, self.total = "idle", None, {}, None
        self.refresh()

    def render(self) -> Text:
        if self.status == "idle":
            return Text("ready: type a question below (F1 for help)", style="dim")
        text = Text()
        for name in STAGES:
            if text:
                text.append(" › ", style="dim")
            if name == self.current:
                text.append(f" {name} {monotonic() - self.current_since:.1f}s ", style="bold reverse")
            elif name in self.done:
                text.append(f"✓ {name} {self.done[name]:.2f}s", style="green")
            else:
                text.append(name, style="dim")
        live = self.status in ("running", "cancelling")
        total = monotonic() - self.began if live else self.total
        text.append(f"   {self.status}", style="bold yellow" if live else "bold")
        if total is not None:
            text.append(f" {total:.1f}s")
        return text
