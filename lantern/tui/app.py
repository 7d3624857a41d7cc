"""The chat App: a prompt, the conversation, and panels for what the answer loop is doing.

How it is wired (workers compute, Messages carry results, handlers touch widgets):
- `answer` is a thread worker: it iterates `lantern.loop.events` and posts one Message per event
  (`lantern.tui.messages`); it touches no widget. Esc sets the loop's cancel event, and the
  stream ends within one token with the partial answer marked cancelled.
- `warm_up` is a thread worker started after the first frame: it reads the session, opens the
  knowledge base and loads the query embedder, so the prompt is usable at once and the first
  answer does not pay for them.
- The `on_*` handlers run on the UI thread and hand each event to the widget that shows it.

A finished, non-cancelled answer is appended to the named session exactly as `lantern ask
--session` does, so a chat continues on the command line and back. Failures (a broken model
folder, a session file that does not parse) become a notification with the line the CLI prints,
and the app keeps running.

The App knows no stage of the loop: it renders events, and reads settings like every command.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Markdown

from lantern.tui import messages as m
from lantern.tui.citations import passage_number
from lantern.tui.format import error_line, verdict_of
from lantern.tui.widgets.answer_view import AnswerView
from lantern.tui.widgets.claims_table import ClaimsTable
from lantern.tui.widgets.conversation import Conversation
from lantern.tui.widgets.depth_legend import DepthLegend
from lantern.tui.widgets.evidence_panel import EvidencePanel
from lantern.tui.widgets.help_screen import HelpScreen
from lantern.tui.widgets.search_screen import SearchScreen
from lantern.tui.widgets.session_picker import SessionPicker
from lantern.tui.widgets.source_viewer import SourceViewer
from lantern.tui.widgets.stage_bar import StageBar
from lantern.tui.widgets.status_bar import StatusBar
from lantern.tui.widgets.tool_log import ToolLog

log = logging.getLogger(__name__)
PROMPT = "Ask a question and press Enter  (/search WORDS searches the knowledge base, F1 help)"
EMPTY_KB = "error: the knowledge base is empty; add documents with `lantern ingest PATH`."
"""What `lantern search` prints on an empty knowledge base (a test holds the two together)."""


def new_session_name() -> str:
    return time.strftime("chat-%Y%m%d-%H%M%S")


class LanternChat(App):
    CSS_PATH = "app.tcss"
    TITLE = "Lantern"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [  # short words for the footer; the help screen shows the tooltips
        Binding("f1", "help", "Help", tooltip="This screen: keys, commands and panes"),
        Binding("ctrl+n", "new_chat", "New", tooltip="New chat (saved as a new session)"),
        Binding("ctrl+t", "toggle_mode", "Deep/Fast", tooltip="Toggle DEEP (adaptive loop depth) and FAST (all loop steps)"),
        Binding("escape", "cancel", "Cancel", tooltip="Cancel the running answer: it stops within a token, marked cancelled"),
        Binding("ctrl+y", "copy_answer", "Copy", tooltip="Copy the latest answer to the clipboard"),
        # priority: the screen's own tab binding would otherwise hide these from the footer
        Binding("tab", "focus_next", "Next", priority=True, tooltip="Focus the next pane"),
        Binding("shift+tab", "focus_previous", "Prev", priority=True, tooltip="Focus the previous pane"),
        Binding("ctrl+o", "open_source", "Source", tooltip="Open the selected claim's source at the quoted lines"),
        Binding("ctrl+f", "search", "Search", tooltip="Search the knowledge base directly (or type /search WORDS)"),
        Binding("ctrl+l", "toggle_depth", "Depth", tooltip="Tint each token by the loop step it exited at, with a legend"),
        Binding("ctrl+s", "sessions", "Sessions", tooltip="Switch sessions: reopen a saved one or name a new one"),
        Binding("ctrl+q", "quit", "Quit", priority=True, tooltip="Quit (a running answer is cancelled first)"),
    ]

    def __init__(self, settings, session: str | None = None, reasoner=None, kb=None, *, require_model: bool = False) -> None:
        super().__init__()
        self.settings = settings
        self.session = session or new_session_name()
        self.continues = session is not None
        self.reasoner, self.kb, self.require_model = reasoner, kb, require_model
        self._kb_lock = threading.Lock()
        self._warming = threading.Lock()  # an answer waits for the warm-up: it needs the same things first
        self.turn = 0
        self.running = False
        self.cancel: threading.Event | None = None
        self.view: AnswerView | None = None
        self.depth_on = False
        self._speed: tuple[int, float, int] | None = None  # (draft, seconds of its first token, tokens)

    def compose(self) -> ComposeResult:
        yield StageBar(id="stage")
        with Horizontal(id="main"):
            yield Conversation(id="conversation")
            with Vertical(id="side"):
                yield EvidencePanel(id="evidence")
                yield ToolLog(id="tools")
        yield DepthLegend(id="legend")
        yield Input(placeholder=PROMPT, id="prompt")
        yield StatusBar(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        status = self.query_one(StatusBar)
        status.backend, status.model, status.mode = self.settings.backend, self.settings.model, self.settings.mode
        status.session = self.session
        self.query_one("#conversation").border_title = "Conversation"
        self.query_one("#evidence").border_title = "Evidence"
        self.query_one("#tools").border_title = "Tool calls"
        self.query_one("#prompt").focus()
        self.call_after_refresh(self.warm_up)  # after the first frame: the prompt is usable at once

    # --- background work (threads: they only post messages) -------------------------------------------
    def knowledge(self):
        """The knowledge base, opened once (from any thread)."""
        with self._kb_lock:
            if self.kb is None:
                from lantern.knowledge import KnowledgeBase

                self.kb = KnowledgeBase.open(self.settings)
            return self.kb

    @work(thread=True, group="warm")
    def warm_up(self) -> None:
        with self._warming:
            if self.continues:
                self._load_session(self.session)
            try:
                self.post_message(m.ModelLocated(self._reasoner_label()))
                kb = self.knowledge()
                chunks = kb.count()
                self.post_message(m.KnowledgeBaseOpened(chunks, len(kb.files())))
                import lantern.loop  # noqa: F401  (paid now, not by the first answer)

                if chunks:
                    kb.embed_query("warm up")
            except Exception as exc:
                log.warning("warm-up failed", exc_info=True)
                self.post_message(m.Problem(error_line(exc)))

    def _reasoner_label(self) -> str:
        if self.reasoner is not None:
            return getattr(self.reasoner, "name", "injected")
        if self.settings.backend != "ouro":
            return self.settings.model
        from lantern.runtime.locate import locate

        return self.settings.model if locate(self.settings.model).path else f"{self.settings.model} not installed: extractive"

    @work(thread=True, group="session")
    def load_session(self, name: str) -> None:
        self._load_session(name)

    def _load_session(self, name: str) -> None:
        from lantern.sessions import load_turns

        try:
            self.post_message(m.SessionLoaded(name, load_turns(self.settings.home, name)))
        except Exception as exc:
            self.post_message(m.Problem(error_line(exc)))

    @work(thread=True, exclusive=True, group="answer")
    def answer(self, question: str, turn: int, settings, session: str, cancel: threading.Event) -> None:
        with self._warming:
            pass
        try:
            from lantern.loop import events
            from lantern.sessions import append_turns, exchange, load_turns

            history = load_turns(settings.home, session)  # read now: the CLI may have added turns meanwhile
            for event in events(question, settings, history, cancel, session_id=session, kb=self.knowledge(),
                                reasoner=self.reasoner, require_model=self.require_model):
                if event.kind == "answer" and event.answer.status != "cancelled":
                    append_turns(settings.home, session, exchange(question, event.answer.answer))
                self.post_message(m.for_event(turn, event))
        except Exception as exc:  # the loop's own errors are LanternErrors; anything else is logged too
            log.warning("answer failed", exc_info=True)
            self.post_message(m.AnswerFailed(turn, error_line(exc)))

    # --- the prompt ------------------------------------------------------------------------------------
    async def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.clear()
        if text.startswith("/"):
            self.command(text)
        elif text:
            await self.ask(text)

    def command(self, text: str) -> None:
        name, _, rest = text.partition(" ")
        if name == "/search":
            self.push_screen(SearchScreen(rest.strip()))
        elif name == "/session":
            self.switch_session(rest.strip()) if rest.strip() else self.action_sessions()
        elif name == "/help":
            self.action_help()
        else:
            self.notify(f"unknown command {name}: try /search WORDS or /session NAME", severity="warning")

    async def ask(self, question: str) -> None:
        if self.running:
            self.notify("an answer is still being written; Esc cancels it", severity="warning")
            return
        self.turn += 1
        self.running, self.cancel, self._speed = True, threading.Event(), None
        self.view = await self.query_one(Conversation).add_answer(question, self.turn)
        self.query_one(EvidencePanel).show(self.view.passages)
        self.query_one(ToolLog).clear()
        self.query_one(StageBar).begin()
        self.answer(question, self.turn, self.settings, self.session, self.cancel)

    # --- loop events, on the UI thread --------------------------------------------------------------
    def _current(self, message) -> AnswerView | None:
        """The view a message is for; None for a straggler of an answer the user left."""
        return self.view if message.turn == self.turn else None

    def on_stage_changed(self, message: m.StageChanged) -> None:
        if self._current(message):
            self.query_one(StageBar).stage(message.event)

    def on_evidence_found(self, message: m.EvidenceFound) -> None:
        if view := self._current(message):
            view.passages = list(message.event.passages)
            self.query_one(EvidencePanel).show(view.passages)

    async def on_token_streamed(self, message: m.TokenStreamed) -> None:
        if view := self._current(message):
            event = message.event
            await view.add_token(event)
            self._count_speed(event)

    def _count_speed(self, event) -> None:
        if self._speed is None or self._speed[0] != event.draft:
            self._speed = (event.draft, event.seconds, 0)
        draft, first, n = self._speed
        self._speed = (draft, first, n + 1)
        if n >= 1 and event.seconds > first:
            self.query_one(StatusBar).tokens_per_second = n / (event.seconds - first)

    def on_thinking_streamed(self, message: m.ThinkingStreamed) -> None:
        if view := self._current(message):
            view.add_thinking(message.event)

    def on_tool_called(self, message: m.ToolCalled) -> None:
        if self._current(message):
            self.query_one(ToolLog).call(message.event)

    def on_tool_returned(self, message: m.ToolReturned) -> None:
        if view := self._current(message):
            self.query_one(ToolLog).result(message.event)
            if message.event.evidence_number:
                panel = self.query_one(EvidencePanel)
                if panel.passages is not view.passages:
                    panel.show(view.passages)
                panel.add_tool_result(message.event)

    def on_claim_checked(self, message: m.ClaimChecked) -> None:
        if view := self._current(message):
            view.add_claim(message.event)

    def on_notice_raised(self, message: m.NoticeRaised) -> None:
        self.notify(f"note: {message.event.text}", severity="warning", timeout=12)
        if view := self._current(message):
            view.note(message.event.text)

    async def _keeping_the_newest_in_view(self, change) -> None:
        """Await a change to the answer; a conversation that showed the newest text still does after it."""
        conversation = self.query_one(Conversation)
        following = conversation.at_newest()
        await change
        if following:
            conversation.catch_up()

    async def on_answer_revised(self, message: m.AnswerRevised) -> None:
        if view := self._current(message):
            await self._keeping_the_newest_in_view(view.revise(message.event))

    async def on_answer_finished(self, message: m.AnswerFinished) -> None:
        view = self._current(message)
        if view is None:
            return
        answer = message.event.answer
        await self._keeping_the_newest_in_view(view.finish(answer))
        self.running = False
        self.query_one(StageBar).end(answer.status, answer.timings)
        status = self.query_one(StatusBar)
        status.backend, status.model = answer.backend or status.backend, answer.model or status.model
        if answer.backend == "extractive":
            status.tokens_per_second = None  # its "tokens" are quoted sentences: a rate would mean nothing
        average = answer.avg_exit_steps or view.histogram.counts.average  # a cancelled draft has only its tokens' steps
        status.depth = f"exit depth {average:.2f}" if average else "no loop depth"
        self.query_one(DepthLegend).show_for(view.looped)

    def on_answer_failed(self, message: m.AnswerFailed) -> None:
        self.notify(message.text, severity="error", timeout=15)
        if view := self._current(message):
            view.fail(message.text)
            self.running = False
            self.query_one(StageBar).end("failed")

    # --- background results ----------------------------------------------------------------------------
    def on_knowledge_base_opened(self, message: m.KnowledgeBaseOpened) -> None:
        chunks, files = message.chunks, message.files
        self.query_one(StatusBar).kb = (f"KB {chunks} chunk{'s' * (chunks != 1)}, {files} file{'s' * (files != 1)}" if chunks
                                        else "KB empty: run lantern ingest PATH")
        if not message.chunks:
            self.notify(EMPTY_KB, severity="warning", timeout=15)

    def on_model_located(self, message: m.ModelLocated) -> None:
        self.query_one(StatusBar).model = message.label

    def on_session_loaded(self, message: m.SessionLoaded) -> None:
        if message.name == self.session and message.turns:
            self.query_one(Conversation).show_earlier(message.turns)
            self.notify(f"session {message.name}: {len(message.turns) // 2} earlier exchanges")

    def on_problem(self, message: m.Problem) -> None:
        self.notify(message.text, severity="error", timeout=15)

    # --- clicks and selections -------------------------------------------------------------------------
    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        number = passage_number(event.href)
        view = next((a for a in event.markdown.ancestors if isinstance(a, AnswerView)), None)
        if number is None or view is None:
            return
        panel = self.query_one(EvidencePanel)
        if panel.passages is not view.passages:
            panel.show(view.passages)  # a mark in an earlier answer cites that answer's passages
        if panel.point_at(number):
            panel.focus()
        else:
            self.notify(f"passage [{number}] is not among the passages this answer was shown", severity="warning")

    def on_claims_table_opened(self, message: ClaimsTable.Opened) -> None:
        self.open_claim(message.claim)

    def on_evidence_panel_chosen(self, message: EvidencePanel.Chosen) -> None:
        self.open_passage(message.passage)

    def open_claim(self, claim) -> None:
        if not claim.source:
            self.notify(f"this claim was never checked against a source: {claim.reason or 'it cites nothing'}", severity="warning")
            return
        self.open_source(claim.source, claim.start_line, claim.end_line, claim.evidence,
                         f"{verdict_of(claim)} {claim.confidence:.2f}: {claim.claim}")

    def open_passage(self, passage) -> None:
        self.open_source(passage.source, passage.start_line, passage.end_line, "", passage.heading)

    def open_source(self, source: str, start: int, end: int, quote: str, title: str) -> None:
        from lantern.commands.common import display_path

        if source.startswith("tool:"):
            self.notify(f"{source} is a tool's result, not a file; the evidence panel shows it", severity="warning")
            return
        text = self.kb.source_text(source) if self.kb is not None else None  # the text its lines count
        if text is None:
            try:
                text = Path(source).read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                self.notify(f"error: cannot read {source} ({exc.__class__.__name__}); re-ingest it or check the path.", severity="error")
                return
        self.push_screen(SourceViewer(display_path(source), text, start, end, quote, title))

    # --- keys ------------------------------------------------------------------------------------------
    def action_cancel(self) -> None:
        if self.running and self.cancel is not None:
            self.cancel.set()
            self.query_one(StageBar).cancelling()

    def action_toggle_mode(self) -> None:
        mode = "fast" if self.settings.mode == "deep" else "deep"
        self.settings = self.settings.model_copy(update={"mode": mode})
        self.query_one(StatusBar).mode = mode
        what = "each token loops only as deep as it needs" if mode == "deep" else "every token runs all loop steps"
        self.notify(f"{mode.upper()} mode from the next answer: {what}")

    def action_new_chat(self) -> None:
        self._leave_answer()
        self.session, self.continues = new_session_name(), False
        self._reset_screen()

    def switch_session(self, name: str) -> None:
        from lantern.sessions import session_file

        try:
            session_file(self.settings.home, name)
        except Exception as exc:
            self.notify(error_line(exc), severity="error")
            return
        self._leave_answer()
        self.session, self.continues = name, True
        self._reset_screen()
        self.load_session(name)

    def _leave_answer(self) -> None:
        """Stop the running answer and ignore whatever it still posts."""
        if self.cancel is not None:
            self.cancel.set()
        self.turn += 1
        self.running, self.view = False, None

    def _reset_screen(self) -> None:
        self.query_one(Conversation).clear()
        self.query_one(EvidencePanel).show([])
        self.query_one(ToolLog).clear()
        self.query_one(StageBar).reset()
        self.query_one(StatusBar).session = self.session

    def action_copy_answer(self) -> None:
        view = self.query_one(Conversation).latest()
        if view is None or not view.text:
            self.notify("no answer to copy yet", severity="warning")
            return
        self.copy_to_clipboard(view.text)
        self.notify("answer copied to the clipboard")

    def action_open_source(self) -> None:
        focused = self.focused
        if isinstance(focused, EvidencePanel) and focused.highlighted is not None:
            self.open_passage(focused.passages[focused.highlighted])
            return
        if not isinstance(focused, ClaimsTable):
            view = self.query_one(Conversation).latest(with_claims=True)
            focused = view.claims if view is not None else None
        claim = focused.selected() if focused is not None else None
        if claim is None:
            self.notify("no claim to open yet", severity="warning")
        else:
            self.open_claim(claim)

    def action_search(self) -> None:
        self.push_screen(SearchScreen())

    def action_sessions(self) -> None:
        self.push_screen(SessionPicker(self.settings.home, self.session), callback=lambda name: name and self.switch_session(name))

    def action_toggle_depth(self) -> None:
        self.depth_on = not self.depth_on
        self.query_one(Conversation).show_depth(self.depth_on)
        legend = self.query_one(DepthLegend)
        view = self.query_one(Conversation).latest(with_claims=True)
        legend.show_for(view is not None and view.looped)
        legend.display = self.depth_on

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        if self.cancel is not None:
            self.cancel.set()  # the answer's thread ends within a token instead of holding up the exit
        self.exit()
