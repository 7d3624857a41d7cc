"""One evaluation run: the loop over a suite's items, its per-item records, its leaderboard entry.

A run writes LANTERN_HOME/eval/runs/<run-id>.jsonl: a header line (`kind: run`: suite, split,
backend, model, mode, limit), then one `kind: item` line per finished item, written and flushed as
it finishes, so a killed run loses at most the item in flight; the last line of a finished run is
its `kind: summary`. `resume=True` continues the newest unfinished run with the same suite, split,
backend, model and mode: the items already recorded are skipped, never run or written twice.
A finished run appends one record to LANTERN_HOME/eval/leaderboard.jsonl: suite, split, backend,
model, mode, commit, machine, n, metrics with bootstrap 95% intervals (items resampled), seconds.

This module knows nothing about how a suite scores an item (lantern.eval.suites).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lantern.eval.metrics import bootstrap_ci
from lantern.eval.suites import REPO, EvalContext, Suite


@dataclass
class RunResult:
    run_id: str
    path: Path
    entry: dict[str, Any]
    """The leaderboard record of the run."""
    resumed_items: int = 0
    """Items that were already recorded by an earlier, interrupted invocation."""
    resumed: bool = False
    """An unfinished run was found and continued (with --resume)."""


def eval_home(settings) -> Path:
    return settings.home / "eval"


def leaderboard_path(settings) -> Path:
    return eval_home(settings) / "leaderboard.jsonl"


def identity(suite: Suite, ctx: EvalContext, split: str) -> dict[str, Any]:
    """What makes two runs the same run (for --resume) and how the leaderboard names it."""
    settings = ctx.settings
    if not suite.uses_model:
        return {"suite": suite.name, "split": split, "backend": "verifier",
                "model": settings.verifier_model or "lantern-verifier", "mode": None}
    mode = settings.mode if settings.backend == "ouro" else None  # DEEP/FAST is the LoopLM's alone
    return {"suite": suite.name, "split": split, "backend": settings.backend, "model": settings.model, "mode": mode}


def read_run(path: Path) -> tuple[dict | None, list[dict], dict | None]:
    """(header, item records, summary or None) of a run file; a line cut off by a kill is ignored."""
    header, records, summary = None, [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = row.get("kind")
        if kind == "run":
            header = row
        elif kind == "item":
            records.append(row["record"])
        elif kind == "summary":
            summary = row
    return header, records, summary


def unfinished_run(runs: Path, ident: dict[str, Any]) -> Path | None:
    """The newest run file with this identity and no summary line, or None."""
    candidates = sorted(runs.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True) if runs.is_dir() else []
    for path in candidates:
        header, _, summary = read_run(path)
        if header and summary is None and all(header.get(k) == v for k, v in ident.items()):
            return path
    return None


def _repair_tail(path: Path) -> None:
    """Drop a last line a kill cut in half, so the next record starts on a line of its own."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def run(suite: Suite, ctx: EvalContext, split: str, limit: int | None = None, resume: bool = False,
        progress: bool = True, bootstrap: int = 1000) -> RunResult:
    """Run `suite` on `split` (the first `limit` items), recording as it goes; see the module docstring."""
    started = time.perf_counter()
    items = suite.items(ctx, split)
    if limit is not None:
        items = items[:limit]
    ident = identity(suite, ctx, split)
    runs = eval_home(ctx.settings) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = unfinished_run(runs, ident) if resume else None
    resumed_path = path is not None
    done: dict[str, dict] = {}
    if path is not None:
        _repair_tail(path)
        header, records, _ = read_run(path)
        run_id = header["run_id"]
        done = {r["id"]: r for r in records}
    else:
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{suite.name}-{uuid.uuid4().hex[:6]}"
        path = runs / f"{run_id}.jsonl"
        header = {"kind": "run", "run_id": run_id, **ident, "limit": limit, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "config": run_config(ctx.settings, suite)}
        path.write_text(json.dumps(header) + "\n", encoding="utf-8")
    todo = [item for item in items if item["id"] not in done]
    if todo:
        suite.prepare(ctx, todo)
    bar = _progress(len(items), len(items) - len(todo), suite.name, progress)
    with path.open("a", encoding="utf-8") as out:
        for item in todo:
            record = suite.run(ctx, item)
            out.write(json.dumps({"kind": "item", "record": record}, default=str) + "\n")
            out.flush()
            done[item["id"]] = record
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    records = [done[item["id"]] for item in items if item["id"] in done]
    values = summarize(suite, records, bootstrap)
    seconds = round(time.perf_counter() - started, 2)
    entry = {"run_id": run_id, **ident, "n": len(records), "limit": limit, "headline": suite.headline,
             "accuracy": values[suite.headline]["value"] if suite.headline in values else None,
             "metrics": values, "commit": commit(), "machine": machine(), "seconds": seconds,
             "item_seconds": round(sum(r.get("seconds") or 0 for r in records), 2),
             "config": header.get("config") or run_config(ctx.settings, suite), "records": str(path),
             "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if suite.uses_model and records and records[0].get("backend"):
        entry["backend_used"] = records[0]["backend"]  # the answer loop may fall back to extractive
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"kind": "summary", **entry}) + "\n")
    board = leaderboard_path(ctx.settings)
    with board.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")
    return RunResult(run_id, path, entry, resumed_items=len(items) - len(todo), resumed=resumed_path)


def summarize(suite: Suite, records: list[dict], bootstrap: int = 1000) -> dict[str, dict[str, Any]]:
    """Each metric of the suite over `records`: {"value": v, "ci": [lo, hi] or None}."""
    out = {}
    for name, metric in suite.metrics(records).items():
        value = metric(records) if records else None
        ci = bootstrap_ci(records, metric, n=bootstrap) if value is not None and bootstrap else None
        out[name] = {"value": value, "ci": list(ci) if ci else None}
    return out


def run_config(settings, suite: Suite) -> dict[str, Any]:
    """The settings that change what a run measures."""
    if not suite.uses_model:
        return {"min_support": settings.min_support, "embed_model": settings.embed_model, "verifier_model": settings.verifier_model}
    return {"max_new_tokens": settings.max_new_tokens, "temperature": settings.temperature, "exit_threshold": settings.exit_threshold,
            "dtype": settings.dtype, "quant": settings.quant, "device": settings.device, "top_k": settings.top_k,
            "min_support": settings.min_support}


def commit() -> str:
    """The lantern checkout's commit (with `+dirty` when tracked files changed), or "unknown"."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> str:
    """CPU cores, and the GPU's name when torch sees one."""
    text = f"{os.cpu_count()} CPU cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def _progress(total: int, initial: int, name: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    # On a terminal only (disable=None): logs and piped output stay clean.
    return tqdm(total=total, initial=initial, desc=f"eval {name}", unit="item", file=sys.stderr, disable=None, dynamic_ncols=True)
