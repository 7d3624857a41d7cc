"""`lantern ask`: one question, a streamed answer, then its verified claims."""

from __future__ import annotations

import typer

from lantern.errors import NotAvailableYet


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel="Use")
    def ask(
        question: str = typer.Argument(..., help="The question to answer from the knowledge base."),
        mode: str = typer.Option(None, "--mode", help="deep (adaptive loop depth) or fast (all loop steps)."),
        model: str = typer.Option(None, "--model", help="Model name, HF id or snapshot directory."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    ) -> None:
        """Answer a question from the knowledge base, with verified claims.

        Example: `lantern ask "How does Ouro decide when to stop looping?"`
        """
        raise NotAvailableYet("`lantern ask` is not available yet (the answer loop has not landed); try `lantern doctor`.")
