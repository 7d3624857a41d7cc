"""Loop depth on screen: the colour of each exit step, the legend, and one answer's histogram.

A looped model (Ouro) stops each token at loop step 1 to 4; token events carry that `exit_step`.
Other reasoners (the extractive mode, hf, openai) carry None: there is no depth to show, and the
screen says so rather than drawing an empty histogram.

Pure: knows nothing about widgets or the loop, only how counts of exit steps read.
"""

from __future__ import annotations

from rich.text import Text

STEPS = (1, 2, 3, 4)
COLOURS = {1: "#5fafff", 2: "#87d75f", 3: "#ffd75f", 4: "#ff5f5f"}
"""Cool to hot: a token that needed every loop step stands out."""
NO_DEPTH = "no loop depth (not a looped model)"
BAR_WIDTH = 8


def style_of(step: int | None) -> str:
    """The style a token exited at `step` is tinted with ("" for no step: plain text)."""
    return f"bold {COLOURS[min(max(step, 1), 4)]}" if step is not None else ""


class DepthCounts:
    """How many tokens of one answer exited at each loop step."""

    def __init__(self) -> None:
        self.counts = {step: 0 for step in STEPS}
        self.tokens = 0

    def add(self, step: int | None) -> None:
        self.tokens += 1
        if step is not None:
            self.counts[min(max(step, 1), 4)] += 1

    @property
    def looped(self) -> int:
        """Tokens that carried an exit step."""
        return sum(self.counts.values())

    @property
    def average(self) -> float | None:
        return sum(s * n for s, n in self.counts.items()) / self.looped if self.looped else None


def legend() -> Text:
    text = Text("token tint = loop step it exited at: ", style="dim")
    for step in STEPS:
        text.append(f" {step} ", style=f"reverse {COLOURS[step]}")
        text.append(" ")
    return text


def histogram(counts: DepthCounts) -> Text:
    """One line: a bar per exit step, then the average."""
    if not counts.looped:
        return Text(f"exit steps: {NO_DEPTH}", style="dim")
    text = Text("exit steps ", style="dim")
    top = max(counts.counts.values())
    for step in STEPS:
        n = counts.counts[step]
        text.append(f"  {step} ", style="dim")
        text.append("█" * round(BAR_WIDTH * n / top) if n else "", style=COLOURS[step])
        text.append(f" {n}")
    text.append(f"   avg {counts.average:.2f} · {counts.looped} tokens", style="bold")
    return text
