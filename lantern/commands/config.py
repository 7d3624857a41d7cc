"""`lantern config`: the effective settings and where each one came from."""

from __future__ import annotations

import typer

from lantern.commands import common


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel="Setup")
    def config(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Print every setting, its value, and its origin (flag, env, config.toml or default).

        Override any setting with LANTERN_<NAME> in the environment or in LANTERN_HOME/config.toml.
        """
        from lantern.settings import Settings, setting_origins

        effective = common.settings()
        origins = setting_origins(common.flag_overrides())
        rows = [
            {"name": name, "value": getattr(effective, name), "origin": origins[name], "help": field.description or ""}
            for name, field in Settings.model_fields.items()
        ]
        from lantern.doctor import check_model

        backend = check_model(effective)  # which backend answers, and whether it can
        if as_json:
            common.print_json({row["name"]: {"value": row["value"], "origin": row["origin"]} for row in rows}
                              | {"backend_status": {"ok": backend.ok, "detail": backend.detail}})
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Lantern settings (config file: {effective.config_path})")
        for column in ("setting", "value", "from", "meaning"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(row["name"], str(row["value"]), row["origin"], row["help"])
        Console().print(table)
        print(f"{'ok' if backend.ok else '--'} {backend.detail}")
