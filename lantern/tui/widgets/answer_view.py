"""One question and its answer as the loop makes it: the answer streamed as Markdown, the claims
table under it, the answer's histogram of exit steps, and lines for notices and the final state.

Streaming appends: tokens go through Textual's MarkdownStream, which re-parses only the last
block, so a long answer is never re-rendered whole per token. Citation marks become links
(`lantern.tui.citations`). A token of a higher draft (a redraft after a tool call, a rewrite with
the verifier's feedback) replaces what was shown; a `revision` replaces the text with what
survived and lists each dropped claim struck through, so what stays on screen is what was
verified. A cancelled answer keeps its partial text, marked cancelled.

With the depth tint on, the Markdown gives way to the same tokens, each coloured by the loop step
it exited at (`lantern.tui.depth`).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Markdown, Static

from lantern.tui import depth
from lantern.tui.citations import Linker, linkify
from lantern.tui.format import markdown_literal
from lantern.tui.widgets.claims_table import ClaimsTable
from lantern.tui.widgets.depth_histogram import DepthHistogram

THINKING_CHARS = 240


class AnswerView(Vertical):
    def __init__(self, question: str, turn: int, earlier: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.question, self.turn, self.earlier = question, turn, earlier
        self.draft = -1
        self.tokens: list[tuple[str, int | None]] = []
        self.linker = Linker()
        self.stream = None
        self.text = earlier or ""
        """What the reader is left with (what "copy the answer" copies)."""
        self.thinking = ""
        self.passages: list = []
        """The passages this answer was shown, numbered from 1 (its [n] marks point into it)."""
        self.notes: list[str] = []
        self.result = None
        self.revised = False
        if earlier is not None:
            self.add_class("-earlier")

    def compose(self) -> ComposeResult:
        yield Static(Text("› " + self.question), classes="question")
        yield Static("", classes="thinking")
        yield Markdown(linkify(self.earlier or ""), open_links=False, classes="answer")
        yield Static("", classes="tinted")
        yield Static("", classes="notes")
        yield Static("earlier turn of this session" if self.earlier is not None else "", classes="state")
        if self.earlier is None:
            yield ClaimsTable(classes="claims")
            yield DepthHistogram(classes="histogram")

    # --- parts -------------------------------------------------------------------------------------
    @property
    def markdown(self) -> Markdown:
        return self.query_one(".answer", Markdown)

    @property
    def claims(self) -> ClaimsTable:
        return self.query_one(ClaimsTable)

    @property
    def histogram(self) -> DepthHistogram:
        return self.query_one(DepthHistogram)

    def _state(self, text: str | Text) -> None:
        self.query_one(".state", Static).update(text)

    # --- the stream --------------------------------------------------------------------------------
    async def add_token(self, event) -> None:
        if event.draft != self.draft:
            await self._new_draft(event.draft)
        self.tokens.append((event.text, event.exit_step))
        self.text += event.text
        self.histogram.add(event.exit_step)
        if self.has_class("-depth"):
            self._tint()
        if self.stream is None:
            self.stream = Markdown.get_stream(self.markdown)
        await self.stream.write(self.linker.feed(event.text))

    async def _new_draft(self, number: int) -> None:
        await self._stop_stream(flush=False)
        self.draft, self.tokens, self.text, self.linker = number, [], "", Linker()
        self.histogram.restart()
        await self.markdown.update("")
        if number > 0:
            self._state(Text(f"draft {number + 1}: replaces the earlier draft", style="dim italic"))

    async def _stop_stream(self, flush: bool = True) -> None:
        if self.stream is not None:
            if flush:
                await self.stream.write(self.linker.flush())
            await self.stream.stop()
            self.stream = None

    def add_thinking(self, event) -> None:
        self.thinking += event.text
        shown = " ".join(self.thinking.split())[-THINKING_CHARS:]
        self.query_one(".thinking", Static).update(Text("thinking: " + shown, style="dim italic"))
        self.add_class("-thinking")

    def add_claim(self, event) -> None:
        self.claims.add_claim(event.claim, event.draft)

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.query_one(".notes", Static).update(Text("\n".join(f"note: {n}" for n in self.notes), style="dim"))
        self.add_class("-notes")

    async def revise(self, event) -> None:
        """The verifier is done: show the text that survived, and strike what was dropped."""
        await self._stop_stream(flush=False)
        self.text, self.revised = event.text, True
        shown = linkify(event.text)
        if event.dropped:
            struck = "\n".join(f"- ~~{markdown_literal(c.claim)}~~" + (f" ({c.reason})" if c.reason else "") for c in event.dropped)
            shown += f"\n\n**Not supported by the documents:**\n\n{struck}"
        await self.markdown.update(shown)

    async def finish(self, answer) -> None:
        self.result = answer
        await self._stop_stream()
        if not self.tokens and answer.answer and not self.markdown.source:
            await self.markdown.update(linkify(answer.answer))  # not in the KB: the loop never called a model
        if answer.status != "cancelled":
            self.text = answer.answer
        self.claims.show(answer.claims, answer.dropped)
        if answer.status == "cancelled":
            self.add_class("-cancelled")
            self._state(Text("cancelled: the answer above was stopped before it was verified.", style="bold yellow"))
            return
        kept, dropped = len(answer.claims), len(answer.dropped)
        summary = f"{answer.status} · {kept} claim{'s' * (kept != 1)} verified"
        summary += f" · {dropped} dropped" if dropped else ""
        self._state(Text(summary + f" · {answer.backend or 'no model'}", style="dim"))

    def fail(self, text: str) -> None:
        self._state(Text(text, style="bold red"))
        self.add_class("-failed")

    # --- loop depth ----------------------------------------------------------------------------------
    def show_depth(self, on: bool) -> None:
        self.set_class(on, "-depth")
        if on:
            self._tint()

    def _tint(self) -> None:
        text = Text()
        for piece, step in self.tokens:
            text.append(piece, style=depth.style_of(step))
        if self.tokens and all(step is None for _, step in self.tokens):
            text.append(f"\n({depth.NO_DEPTH})", style="dim")
        elif self.revised:
            text.append("\n(the tokens as generated; the verified text is shown with the tint off)", style="dim")
        self.query_one(".tinted", Static).update(text)

    @property
    def looped(self) -> bool:
        return any(step is not None for _, step in self.tokens)
