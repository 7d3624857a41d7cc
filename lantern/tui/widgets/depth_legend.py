"""The legend for tokens tinted by loop depth; shown while the tint is on. When the last answer
came from a model without loop depth it says so instead of showing colours nothing uses."""

from __future__ import annotations

from textual.widgets import Static

from lantern.tui import depth


class DepthLegend(Static):
    def show_for(self, looped: bool) -> None:
        self.update(depth.legend() if looped else f"[dim]{depth.NO_DEPTH}[/dim]")
