"""`lantern ask`: one question, a streamed answer, then its verified claims; every output is rendered
from the answer loop's events (`--events` prints them as they are, one JSON object per line)."""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

import typer

from lantern.commands import common


@contextmanager
def ctrl_c_cancels(cancel: threading.Event):
    """The first Ctrl-C cancels the answer (it ends within a token, marked cancelled); a second one
    interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class HumanOutput:
    """Renders events for a person: the draft as it streams, tool calls as they happen, then the
    verified answer with its claims (the streamed draft is replaced by what survived verification)."""

    def __init__(self) -> None:
        self.draft = -1
        self.streaming = False

    def __call__(self, event) -> None:
        kind = event.kind
        if kind == "token":
            if event.draft != self.draft:
                self.draft = event.draft
                print(("\n" if self.streaming else "") + ("Draft: " if event.draft == 0 else "Redraft: "), end="")
                self.streaming = True
            print(event.text, end="", flush=True)
        elif kind == "notice":
            self._break()
            common.notice(f"note: {event.text}")
        elif kind == "tool_call":
            self._break()
            shown = f"{event.call.name} {event.call.arguments}" if event.call else event.raw
            common.notice(f"tool call: {shown}" + (f"  (rejected: {event.error})" if not event.valid else ""))
        elif kind == "tool_result":
            common.notice(f"tool result ({event.seconds:.2f}s){' error' if event.is_error else ''}: {' '.join(event.content.split())[:200]}")
        elif kind == "answer":
            self._break()
            self.render(event.answer)

    def _break(self) -> None:
        if self.streaming:
            print("\n")
            self.streaming = False

    @staticmethod
    def render(result) -> None:
        if result.status == "cancelled":
            print(result.answer or "(nothing yet)")
            common.notice("cancelled: the answer above was stopped before it was verified.")
            return
        print(result.answer)
        if result.claims or result.dropped:
            print("\nClaims:")
        for c in result.claims:
            print(f"  [{c.verdict.value} {c.confidence:.2f}, relevance {c.relevance:.2f}] {c.claim}")
            quote = " ".join(c.evidence.split())
            print(f"      {common.display_path(c.source)}:{c.start_line}-{c.end_line}  \"{quote}\"")
        for c in result.dropped:
            why = c.reason or "not supported by the documents"
            print(f"  [dropped: {c.verdict.value} {c.confidence:.2f}] {c.claim}  ({why})")
        if result.related:
            print("\nRelated (also in the documents, not an answer to the question):")
        for c in result.related:
            print(f"  [relevance {c.relevance:.2f}] {c.claim}  ({common.display_path(c.source)}:{c.start_line}-{c.end_line})")
        for conflict in result.conflicts:
            shown = "; ".join(f"{v.value} in {common.display_path(v.source)}:{v.start_line}-{v.end_line}" for v in conflict.values)
            print(f"\nConflict: the sources disagree on the {conflict.about}: {shown}")
        timing = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
        checked = f"; answerable {result.answerability:.2f}" if result.answerability is not None else ""
        print(f"\nstatus {result.status}{checked}; model {result.model or 'none'}; {timing}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel="Use")
    def ask(
        question: str = typer.Argument(..., help="The question to answer from the knowledge base."),
        mode: str = typer.Option(None, "--mode", help="deep (adaptive loop depth) or fast (all loop steps)."),
        model: str = typer.Option(None, "--model", help="Model name, HF id or snapshot directory (for backend openai: the endpoint's model name)."),
        backend: str = typer.Option(None, "--backend", help="ouro (default), hf (a local transformers folder) or openai (an OpenAI-compatible endpoint)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
        as_events: bool = typer.Option(False, "--events", help="Print every event of the answer loop as it happens, one JSON object per line; the last is the answer."),
        session: str = typer.Option(None, "--session", help="Keep this conversation under a name: follow-ups see its earlier turns."),
        quant: str = typer.Option(None, "--quant", help="Weights of the native model: none, int8 or int4 (smaller and faster on CPU, at an accuracy cost; default: the quant setting)."),
    ) -> None:
        """Answer a question from the knowledge base, with verified claims. Ctrl-C stops the answer.

        Example: `lantern ask "How does Ouro decide when to stop looping?"`, then
        `lantern ask --session ouro "What is DEEP mode?"` and `lantern ask --session ouro "and how fast is it?"`;
        `lantern ask "..." --events` streams NDJSON for programs.
        """
        from lantern.errors import LanternError
        from lantern.events import public_answer, to_json
        from lantern.loop import events
        from lantern.sessions import append_turns, exchange, load_turns

        if as_json and as_events:
            raise LanternError("--json and --events are two output formats; pick one.")
        settings = common.settings(mode=mode, model=model, backend=backend, quant=quant)
        if settings.backend == "ouro" and settings.quant != "none":
            from lantern.runtime.quantize import ACCURACY_NOTICE

            common.notice(f"note: {ACCURACY_NOTICE[settings.quant]}")
        history = load_turns(settings.home, session) if session else None
        cancel = threading.Event()
        human = None if (as_json or as_events) else HumanOutput()
        with ctrl_c_cancels(cancel):
            for event in events(question, settings, history, cancel, session_id=session, require_model=model is not None):
                if as_events:
                    sys.stdout.write(to_json(event) + "\n")
                    sys.stdout.flush()
                elif human is not None:
                    human(event)
        result = event.answer
        if as_json:
            for line in result.notices:
                common.notice(f"note: {line}")
            common.print_json(public_answer(result))
        if result.status == "cancelled":
            raise typer.Exit(130)  # nothing joins the session: only a finished answer does
        if session:
            append_turns(settings.home, session, exchange(result.question, result.answer))
