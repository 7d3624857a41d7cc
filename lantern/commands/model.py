"""`lantern model pull|list|path` and `lantern bench`: reasoning-model files and speed."""

from __future__ import annotations

import typer

from lantern.commands import common
from lantern.errors import NotAvailableYet

model_app = typer.Typer(help="Download, list and locate reasoning models.", no_args_is_help=True)


@model_app.command("pull")
def pull(name: str = typer.Argument(..., help="ouro-1.4b, ouro-1.4b-thinking, ouro-2.6b, ouro-2.6b-thinking or a HF id.")) -> None:
    """Download a model into the Hugging Face cache (the only command that goes online).

    Example: `lantern model pull ouro-1.4b`
    """
    from lantern.runtime.locate import pull as pull_snapshot

    path = pull_snapshot(name)
    typer.echo(str(path))


@model_app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the known Ouro models and whether their weights are on this machine."""
    from lantern.runtime.locate import SHORT_NAMES, locate

    rows = []
    for short, repo_id in SHORT_NAMES.items():
        found = locate(short)
        rows.append({"name": short, "repo_id": repo_id, "path": str(found.path) if found.path else None})
    if as_json:
        common.print_json(rows)
        return
    for row in rows:
        status = row["path"] or f"not downloaded (lantern model pull {row['name']})"
        typer.echo(f"{row['name']:<20} {row['repo_id']:<30} {status}")


@model_app.command("path")
def path(name: str = typer.Argument(None, help="Model reference; default: the configured model.")) -> None:
    """Print the local snapshot directory of a model, or say where it was looked for."""
    from lantern.runtime.locate import require

    typer.echo(str(require(name or common.settings().model)))


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model", rich_help_panel="Models")

    @app.command(rich_help_panel="Measure")
    def bench() -> None:
        """Benchmark the LoopLM runtime: decode/prefill tok/s, exit depth, GB/s, memory."""
        raise NotAvailableYet("`lantern bench` is not available yet (the LoopLM runtime has not landed).")
