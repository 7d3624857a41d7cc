"""`lantern ingest`, `lantern search`, `lantern kb list|rm`: the knowledge base."""

from __future__ import annotations

import typer

from lantern.errors import NotAvailableYet

kb_app = typer.Typer(help="Inspect and edit the knowledge base.", no_args_is_help=True)


def _not_yet(command: str) -> None:
    raise NotAvailableYet(f"`lantern {command}` is not available yet (the knowledge base has not landed); try `lantern doctor`.")


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel="Knowledge base")
    def ingest(paths: list[str] = typer.Argument(..., help="Files or folders to add (recursive).")) -> None:
        """Add files and folders to the knowledge base; unchanged files are skipped."""
        _not_yet("ingest")

    @app.command(rich_help_panel="Knowledge base")
    def search(query: str = typer.Argument(..., help="What to look for.")) -> None:
        """Search the knowledge base (hybrid vector + full-text)."""
        _not_yet("search")

    @kb_app.command("list")
    def kb_list() -> None:
        """List ingested files."""
        _not_yet("kb list")

    @kb_app.command("rm")
    def kb_rm(path: str = typer.Argument(..., help="A file or folder previously ingested.")) -> None:
        """Remove a file's chunks from the knowledge base."""
        _not_yet("kb rm")

    app.add_typer(kb_app, name="kb", rich_help_panel="Knowledge base")
