"""Commands whose features have not landed yet: each says so in one line and exits 1."""

from __future__ import annotations

import typer

from lantern.errors import NotAvailableYet


def _not_yet(command: str, what: str) -> None:
    raise NotAvailableYet(f"`lantern {command}` is not available yet ({what} has not landed); see README.md for what works today.")


def register(app: typer.Typer) -> None:
    """Every command has landed; a feature that has not yet registers its placeholder here."""
