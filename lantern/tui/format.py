"""How records read on screen: a source with its line span cut to fit, a confidence bar, a verdict.

Pure: knows nothing about widgets, only about `lantern.records` fields.
"""

from __future__ import annotations

import re

from rich.text import Text

VERDICT_STYLES = {"supported": "green", "unsupported": "yellow", "contradicted": "red"}


def short_path(path: str, width: int) -> str:
    """The path as the user would type it, cut from the left to `width` (the file name survives)."""
    from lantern.commands.common import display_path

    shown = display_path(path)
    return shown if len(shown) <= width else "…" + shown[-(width - 1):]


def lines(start: int, end: int) -> str:
    return f"{start}" if start == end else f"{start}-{end}"


def source_label(source: str, start: int, end: int, width: int = 40) -> str:
    """`docs/lamps.md:3-4`; tool results (`tool:calculate`) and unchecked claims have no lines."""
    if not source:
        return "(no source)"
    if source.startswith("tool:") or not start:
        return short_path(source, width)
    span = lines(start, end)
    return f"{short_path(source, max(8, width - len(span) - 1))}:{span}"


def verdict_of(claim) -> str:
    return getattr(claim.verdict, "value", str(claim.verdict))


def confidence_bar(confidence: float, verdict: str, width: int = 10) -> Text:
    filled = round(max(0.0, min(1.0, confidence)) * width)
    text = Text("█" * filled, style=VERDICT_STYLES.get(verdict, ""))
    text.append("░" * (width - filled), style="dim")
    text.append(f" {confidence:.2f}")
    return text


def error_line(exc: BaseException) -> str:
    """The one line the CLI prints for a failure: a LanternError's own message, anything else as an
    internal error (its traceback goes to the log)."""
    from lantern.errors import LanternError

    if isinstance(exc, LanternError):
        return f"error: {exc}"
    return f"error: internal error ({exc.__class__.__name__}: {exc}); traceback in LANTERN_HOME/logs/lantern.log; please report it."


def markdown_literal(text: str) -> str:
    """`text` shown as written inside Markdown (a claim's `*` or `~` is not emphasis)."""
    return re.sub(r"([\\`*_~\[\]<>|#])", r"\\\1", text)
