"""`lantern chat`: the terminal chat (Textual). Builds settings like every command (global
`--home` and `--set` included) and runs `lantern.tui.app.LanternChat`; textual and the loop are
imported only when the command runs, so `lantern --version` stays fast."""

from __future__ import annotations

import typer

from lantern.commands import common


def run(session: str | None = None, mode: str | None = None, model: str | None = None, backend: str | None = None) -> int:
    """Run the chat until the user quits; the App's exit status."""
    from lantern.sessions import session_file
    from lantern.tui.app import LanternChat

    settings = common.settings(mode=mode, model=model, backend=backend)
    if session:
        session_file(settings.home, session)  # a bad name is the same one-line error as `ask --session`
    app = LanternChat(settings, session=session, require_model=model is not None)
    app.run()
    return app.return_code or 0


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel="Use")
    def chat(
        session: str = typer.Option(None, "--session", help="Continue this named session (the one `lantern ask --session` uses); a new chat gets its own name."),
        mode: str = typer.Option(None, "--mode", help="deep (adaptive loop depth) or fast (all loop steps); Ctrl+T toggles it."),
        model: str = typer.Option(None, "--model", help="Model name, HF id or snapshot directory (for backend openai: the endpoint's model name)."),
        backend: str = typer.Option(None, "--backend", help="ouro (default), hf (a local transformers folder) or openai (an OpenAI-compatible endpoint)."),
    ) -> None:
        """Chat in the terminal (Textual TUI): streamed answers, their claims and evidence, tool calls and loop depth.

        Example: `lantern chat`, or `lantern chat --session ouro` to continue the conversation
        `lantern ask --session ouro "..."` started. F1 lists the keys; Esc stops an answer.
        """
        code = run(session, mode, model, backend)
        if code:
            raise typer.Exit(code)
