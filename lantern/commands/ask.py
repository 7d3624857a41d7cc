"""`lantern ask`: one question, a streamed answer, then its verified claims."""

from __future__ import annotations

import sys

import typer

from lantern.commands import common



def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel="Use")
    def ask(
        question: str = typer.Argument(..., help="The question to answer from the knowledge base."),
        mode: str = typer.Option(None, "--mode", help="deep (adaptive loop depth) or fast (all loop steps)."),
        model: str = typer.Option(None, "--model", help="Model name, HF id or snapshot directory."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
        session: str = typer.Option(None, "--session", help="Keep this conversation under a name: follow-ups see its earlier turns."),
    ) -> None:
        """Answer a question from the knowledge base, with verified claims.

        Example: `lantern ask "How does Ouro decide when to stop looping?"`, then
        `lantern ask --session ouro "What is DEEP mode?"` and `lantern ask --session ouro "and how fast is it?"`
        """
        from lantern.loop import answer
        from lantern.sessions import append_turns, exchange, load_turns

        settings = common.settings(mode=mode, model=model)
        history = load_turns(settings.home, session) if session else None
        streamed: list[str] = []

        def on_token(text: str) -> None:
            if not as_json:
                if not streamed:
                    print("Draft: ", end="")
                streamed.append(text)
                print(text, end="", flush=True)

        result = answer(question, settings, history=history, session_id=session, on_token=on_token, require_model=model is not None)
        if session:  # only a finished answer joins the session
            append_turns(settings.home, session, exchange(result.question, result.answer))
        if streamed:
            print("\n")
        for notice in result.notices:
            common.notice(f"note: {notice}")
        if as_json:
            data = result.model_dump(mode="json", include={"question", "answer", "status", "mode", "model", "timings", "avg_exit_steps"})
            fields = {"claim", "evidence", "confidence", "verdict", "source", "start_line", "end_line", "citations"}
            data["claims"] = [c.model_dump(mode="json", include=fields) for c in result.claims]
            data["dropped"] = [c.model_dump(mode="json", include=fields) for c in result.dropped]
            common.print_json(data)
            return
        print(result.answer)
        if result.claims or result.dropped:
            print("\nClaims:")
        for c in result.claims:
            print(f"  [{c.verdict.value} {c.confidence:.2f}] {c.claim}")
            quote = " ".join(c.evidence.split())
            print(f"      {common.display_path(c.source)}:{c.start_line}-{c.end_line}  \"{quote}\"")
        for c in result.dropped:
            print(f"  [dropped: {c.verdict.value} {c.confidence:.2f}] {c.claim}  (not supported by the documents)")
        timing = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
        print(f"\nstatus {result.status}; model {result.model or 'none'}; {timing}", file=sys.stderr)
