"""What the chat tests share: the loop tests' scripted model and documents, and waiting on the app
from a Pilot (the answer runs in a thread worker, so a test waits for what the screen shows)."""

from __future__ import annotations

import io
import threading
import time

from scripted import ScriptedReasoner  # noqa: E402

from rich.console import Console  # noqa: E402
from textual.widgets import Input  # noqa: E402


class GatedReasoner(ScriptedReasoner):
    """The scripted model, holding its reply after `hold_after` pieces until `gate` is set (so a
    test can look at the screen mid-stream), and keeping each Question it was asked."""

    def __init__(self, *replies, hold_after: int | None = None) -> None:
        super().__init__(*replies)
        self.gate = threading.Event()
        self.hold_after = hold_after
        self.questions: list = []

    def stream(self, question, evidence, feedback=None, tools=None, cancel=None):
        self.questions.append(question)
        for n, item in enumerate(super().stream(question, evidence, feedback, tools, cancel)):
            if n == self.hold_after:
                assert self.gate.wait(60), "the test never opened the gate"
            yield item


class HeldReasoner:
    """A real reasoner (such as a tiny Ouro checkpoint) whose stream waits after `hold_after`
    reader tokens until `gate` is set: a test can press a key while the model is provably
    mid-stream, however slow or loaded the machine is."""

    def __init__(self, inner, hold_after: int) -> None:
        self.inner, self.hold_after = inner, hold_after
        self.gate = threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def stream(self, question, evidence, feedback=None, tools=None, cancel=None):
        tokens = 0
        for item in self.inner.stream(question, evidence, feedback, tools, cancel):
            yield item
            if getattr(item, "channel", None) == "answer":
                tokens += 1
                if tokens == self.hold_after:
                    assert self.gate.wait(60), "the test never opened the gate"


async def until(pilot, condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await pilot.pause(0.05)


async def ask(pilot, question: str) -> None:
    """Type a question into the prompt and press Enter."""
    prompt = pilot.app.query_one("#prompt", Input)
    prompt.focus()
    prompt.value = question
    await pilot.press("enter")


async def finished(pilot, timeout: float = 180.0):
    """Wait until the current answer is over; its AnswerView."""
    app = pilot.app
    await until(pilot, lambda: app.view is not None and not app.running, "the answer to finish", timeout)
    await pilot.pause(0.1)
    return app.view


def plain(widget) -> str:
    """The text a Static-like widget shows now (a Rich renderable such as a table printed as text)."""
    rendered = widget.render()
    if hasattr(rendered, "plain"):
        return rendered.plain
    console = Console(width=250, file=io.StringIO(), record=True)
    console.print(getattr(widget, "content", rendered))
    return console.export_text()


def link_cell(app, href: str) -> tuple[int, int] | None:
    """The screen cell of a clickable link to `href`, as the screen shows it now."""
    width, height = app.size
    for y in range(height):
        for x in range(width):
            meta = app.screen.get_style_at(x, y).meta or {}
            if meta.get("@click") == f"link({href!r})":
                return x, y
    return None
