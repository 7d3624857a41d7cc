"""`lantern ask` benchmark: per-stage latency, answer status and citation validity on the shipped kb/.

Ingests kb/ into a temporary LANTERN_HOME, then answers the questions in data/kb_questions.jsonl
(some answerable from kb/, some not) with the configured reasoner (extractive when no weights are
installed; `--model DIR` for a snapshot, e.g. a random one from `lantern bench --shape tiny`).
Reports the median seconds per stage, how often the status matched whether the answer is in kb/,
and citation validity: every claim's source was among the retrieved passages and its evidence
quote is verbatim at the stated lines of the source file (must be 100%).

    .venv/bin/python bench/ask.py [--model DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANCE_LOG", "error")

from lantern.knowledge import KnowledgeBase  # noqa: E402
from lantern.loop import answer  # noqa: E402
from lantern.settings import load_settings  # noqa: E402


def citation_valid(result) -> tuple[int, int]:
    shown = {(e.source, e.text) for e in result.evidence}
    good = total = 0
    for claim in result.claims + result.dropped:
        if not claim.source or claim.source.startswith("tool:"):
            continue
        total += 1
        lines = Path(claim.source).read_text(encoding="utf-8").split("\n")
        verbatim = claim.evidence in "\n".join(lines[claim.start_line - 1 : claim.end_line])
        retrieved = any(source == claim.source and claim.evidence in text for source, text in shown)
        good += verbatim and retrieved
    return good, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="snapshot directory or model name (default: the model setting)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    questions = [json.loads(line) for line in (ROOT / "data" / "kb_questions.jsonl").open()]
    with tempfile.TemporaryDirectory() as home:
        overrides = {"home": home} | ({"model": args.model} if args.model else {})
        settings = load_settings(overrides)
        kb = KnowledgeBase.open(settings)
        kb.ingest([ROOT / "kb"])
        stages: dict[str, list[float]] = {}
        matched = valid = cited = 0
        statuses = []
        model = ""
        for item in questions:
            result = answer(item["question"], settings, kb=kb)
            model = result.model or model
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
            statuses.append(result.status)
            matched += (result.status != "not_in_kb") == item["in_kb"]
            good, total = citation_valid(result)
            valid, cited = valid + good, cited + total
    report = {
        "questions": len(questions), "model": model or "none",
        "status_matches_kb": f"{matched}/{len(questions)}",
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "citation_validity": f"{valid}/{cited}" + (f" ({100 * valid / cited:.0f}%)" if cited else ""),
        "median_seconds_per_stage": {k: round(statistics.median(v), 4) for k, v in stages.items()},
        "note": "the first question also pays for loading the embedder (and the model); the medians are not moved by it",
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
    }
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
