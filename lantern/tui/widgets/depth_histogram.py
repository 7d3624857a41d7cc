"""One answer's histogram of exit steps with the average, growing as the draft's tokens stream in;
for a model without loop depth it says there is none."""

from __future__ import annotations

from textual.widgets import Static

from lantern.tui import depth


class DepthHistogram(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.counts = depth.DepthCounts()

    def restart(self) -> None:
        """A new draft replaces the old one's tokens, and its counts."""
        self.counts = depth.DepthCounts()
        self.refresh()

    def add(self, step: int | None) -> None:
        self.counts.add(step)
        self.refresh()

    def render(self):
        return depth.histogram(self.counts)
