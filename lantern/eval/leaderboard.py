"""The leaderboard: every finished run's record in LANTERN_HOME/eval/leaderboard.jsonl, read back
and shown as tables, one run (`run_table`) or several side by side (`compare`).

`compare` keeps the newest run of each configuration (backend, model, mode) per suite and split
and puts them in columns: each cell is the metric with its bootstrap 95% interval, so "Ouro DEEP vs
FAST vs a dense model" reads across a row. Intervals that overlap do not show a difference.
This module knows nothing about running suites.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read(path: Path) -> list[dict[str, Any]]:
    """The leaderboard's records, oldest first (unreadable lines skipped)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def label(entry: dict[str, Any]) -> str:
    """A run's column title: backend, model (last path part), mode, and n."""
    model = Path(str(entry.get("model") or "")).name or str(entry.get("model"))
    backend = entry.get("backend_used") or entry.get("backend")
    if backend == "extractive":  # no model wrote the answers: the model and mode settings did nothing
        return f"extractive (n={entry.get('n')})"
    parts = [backend, model] + ([entry["mode"].upper()] if entry.get("mode") else [])
    return " ".join(str(p) for p in parts if p) + f" (n={entry.get('n')})"


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return f"{value:.3g}" if abs(value) >= 1000 else f"{value:.3f}"
    return str(value)


def short_commit(commit: str | None) -> str:
    commit = str(commit or "unknown")
    return commit[:12] + ("+dirty" if commit.endswith("+dirty") else "")


def cell(metric: dict[str, Any] | None) -> str:
    if not metric:
        return "-"
    text = fmt(metric.get("value"))
    ci = metric.get("ci")
    return f"{text} [{fmt(ci[0])}, {fmt(ci[1])}]" if ci and metric.get("value") is not None else text


def latest(entries: list[dict[str, Any]], suite: str | None = None, split: str | None = None) -> dict[tuple[str, str], list[dict]]:
    """(suite, split) -> the newest entry of each (backend, model, mode), in order of first appearance."""
    groups: dict[tuple[str, str], dict[tuple, dict]] = {}
    for entry in entries:
        if (suite and entry.get("suite") != suite) or (split and entry.get("split") != split):
            continue
        key = (entry.get("backend_used") or entry.get("backend"), entry.get("model"), entry.get("mode"))
        group = groups.setdefault((entry.get("suite"), entry.get("split")), {})
        group.pop(key, None)
        group[key] = entry  # newest wins, placed last
    return {k: list(v.values()) for k, v in groups.items()}


def compare_rows(entries: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """(column titles, rows): one row per metric (headline first), one column per run."""
    names: list[str] = []
    for entry in entries:
        for name in [entry.get("headline"), *entry.get("metrics", {})]:
            if name and name not in names:
                names.append(name)
    rows = [[name, *(cell(e.get("metrics", {}).get(name)) for e in entries)] for name in names]
    rows.append(["seconds", *(fmt(e.get("seconds")) for e in entries)])
    rows.append(["commit", *(short_commit(e.get("commit")) for e in entries)])
    rows.append(["machine", *(str(e.get("machine", "")) for e in entries)])
    return ["metric", *(label(e) for e in entries)], rows


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A rich table on stdout; piped output gets 200 columns, so cells do not wrap."""
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def run_table(entry: dict[str, Any]) -> None:
    """The table printed after one run: each metric with its interval."""
    columns, rows = compare_rows([entry])
    print_table(f"{entry['suite']} ({entry['split']}): {label(entry)}, {entry.get('seconds')} s", columns, rows)


def compare(entries: list[dict[str, Any]], suite: str | None = None, split: str | None = None) -> list[dict[str, Any]]:
    """Print one side-by-side table per (suite, split); returns the groups shown (for --json)."""
    shown = []
    for (name, part), group in latest(entries, suite, split).items():
        columns, rows = compare_rows(group)
        print_table(f"{name} ({part})", columns, rows)
        shown.append({"suite": name, "split": part, "runs": group})
    return shown
