"""`lantern doctor`: the first thing to run when something fails."""

from __future__ import annotations

import typer

from lantern.commands import common


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel="Setup")
    def doctor(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Show what is available and what is not: Python, torch and device, model weights, KB, MCP servers."""
        from lantern.doctor import run_checks

        checks = run_checks(common.settings())
        if as_json:
            common.print_json([check.model_dump() for check in checks])
            return
        for check in checks:
            mark = "ok " if check.ok else "-- "
            typer.echo(f"{mark}{check.name:<15} {check.detail}")
