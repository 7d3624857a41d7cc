"""The conversation: one AnswerView per question, earlier turns of the session first. It stays
scrolled to the newest text while an answer streams, until the user scrolls up."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

from lantern.tui.widgets.answer_view import AnswerView

WELCOME = "Ask a question about your documents. Every claim of the answer is checked against its source."


class Conversation(VerticalScroll, can_focus=True):
    def on_mount(self) -> None:
        self.mount(Static(WELCOME, classes="welcome"))
        self.anchor()

    async def add_answer(self, question: str, turn: int) -> AnswerView:
        """A new view for `question`, mounted (with its parts) before the first event can reach it."""
        await self.query(".welcome").remove()
        view = AnswerView(question, turn)
        view.set_class(self.has_class("-depth"), "-depth")
        await self.mount(view)
        self.anchor()
        return view

    def show_earlier(self, turns: list) -> None:
        """Earlier turns of a session (user, assistant pairs), as they were saved, above anything
        asked meanwhile (a question typed before the session was read)."""
        self.query(".welcome").remove()
        views, question = [], None
        for turn in turns:
            if turn.role == "user":
                question = turn.text
            elif question is not None:
                views.append(AnswerView(question, 0, earlier=turn.text))
                question = None
        asked = list(self.query(AnswerView))
        self.mount_all(views, before=asked[0] if asked else None)
        self.anchor()

    def at_newest(self) -> bool:
        """Whether the view shows the newest text (the user has not scrolled up)."""
        return self.scroll_y >= self.max_scroll_y - 1

    def catch_up(self) -> None:
        """Scroll to the newest text once the layout has caught up with a change. The anchor alone
        did not always follow the last growth of an answer (its claims table, the struck claims):
        on a loaded machine the view sometimes stayed a few rows short of the end."""
        self.scroll_end(animate=False)

    def clear(self) -> None:
        self.remove_children()
        self.mount(Static(WELCOME, classes="welcome"))

    def latest(self, with_claims: bool = False) -> AnswerView | None:
        """The newest answer (one asked here, not an earlier turn, when `with_claims`)."""
        views = [v for v in self.query(AnswerView) if v.earlier is None or not with_claims]
        return views[-1] if views else None

    def show_depth(self, on: bool) -> None:
        self.set_class(on, "-depth")
        for view in self.query(AnswerView):
            if view.earlier is None:
                view.show_depth(on)
