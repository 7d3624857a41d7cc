"""Answerability benchmark: does `lantern ask` answer what the documents say and abstain when they do not?

On SQuAD 2.0 dev questions (`../shared/eval/squad2`, development data only: its other half is
kept apart to check that what works here generalises), in extractive mode (no model weights):
1. every article of `contexts.jsonl` becomes one Markdown file (its paragraphs, in order) and is
   ingested into a temporary knowledge base (the retrieval pool: 1,204 paragraphs of 35 articles);
2. every question of `questions_dev.jsonl` is asked through `lantern.loop.answer`;
3. answerable questions score a hit when a gold answer string is inside a claim of the answer
   (the claims that answer, not the ones listed as related); unanswerable ones score an abstention
   when the status is `not_in_kb`, or `partial` with a sentence naming what is missing.
It prints the answer hit rate, the abstention rate and their balanced mean, and with
`--before REV` the same figures for the code at REV, measured in the same run (REV is checked out
in a temporary git worktree and run as a child process of this same script).

    .venv/bin/python bench/answerability.py [--before REV] [--limit N] [--dump rows.jsonl] [--json]
    .venv/bin/python bench/answerability.py --sweep     # the learned check's threshold, replayed from one run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "--tree" in sys.argv:  # a child process of --before: import the lantern of the tree it was given
    sys.path.insert(0, sys.argv[sys.argv.index("--tree") + 1])
else:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANCE_LOG", "error")

EVAL = ROOT.parent / "shared" / "eval" / "squad2"


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def write_articles(folder: Path) -> None:
    """One Markdown file per article, its paragraphs in order."""
    articles: dict[str, list[tuple[int, str]]] = {}
    for line in (EVAL / "contexts.jsonl").open():
        row = json.loads(line)
        articles.setdefault(row["title"], []).append((row["paragraph_index"], row["context"]))
    folder.mkdir(parents=True, exist_ok=True)
    for title, paragraphs in articles.items():
        body = "\n\n".join(text for _, text in sorted(paragraphs))
        (folder / f"{title}.md").write_text(f"# {title.replace('_', ' ')}\n\n{body}\n")


def measure(home: Path, limit: int | None, sweep: bool = False) -> dict:
    os.environ["LANTERN_HOME"] = str(home)
    os.environ["LANTERN_BUILTIN_TOOLS"] = "false"
    from lantern.knowledge import KnowledgeBase
    from lantern.loop import answer
    from lantern.settings import load_settings

    settings = load_settings()
    kb = KnowledgeBase.open(settings)
    write_articles(home / "articles")
    kb.ingest([home / "articles"])  # incremental: a kept --home only finishes what an interrupted run left
    questions = [json.loads(line) for line in (EVAL / "questions_dev.jsonl").open()][:limit]
    if sweep:  # the learned check scores every answer but demotes none: `sweeps` replays each threshold
        from lantern.verify.answerable import shared_model

        model, line = shared_model()
        if model is None:
            raise SystemExit(line)
        model.threshold = 0.0
    rows = []
    for q in questions:
        started = time.perf_counter()
        result = answer(q["question"], settings, kb=kb)
        seconds = time.perf_counter() - started
        answerable = bool(q["answers"])
        claims_text = normalised(" ".join(c.claim for c in result.claims))
        hit = answerable and any(normalised(a) and normalised(a) in claims_text for a in q["answers"])
        abstained = result.status == "not_in_kb" or (result.status == "partial" and bool(getattr(result, "missing", "")))
        rows.append({"id": q["id"], "question": q["question"], "answerable": answerable, "status": result.status,
                     "hit": hit, "abstained": abstained, "seconds": round(seconds, 4), "answer": result.answer,
                     "gold": q["answers"], "missing": getattr(result, "missing", ""),
                     "answerability": getattr(result, "answerability", None)})
    answerable_rows = [r for r in rows if r["answerable"]]
    unanswerable_rows = [r for r in rows if not r["answerable"]]
    hit_rate = sum(r["hit"] for r in answerable_rows) / max(1, len(answerable_rows))
    abstention = sum(r["abstained"] for r in unanswerable_rows) / max(1, len(unanswerable_rows))
    return {
        "questions": len(rows), "answerable": len(answerable_rows), "unanswerable": len(unanswerable_rows),
        "answer_hit_rate": round(hit_rate, 3), "abstention_rate": round(abstention, 3),
        "balanced_mean": round((hit_rate + abstention) / 2, 3),
        "answerable_abstained": round(sum(r["abstained"] for r in answerable_rows) / max(1, len(answerable_rows)), 3),
        "seconds_per_question_median": round(statistics.median(r["seconds"] for r in rows), 3) if rows else 0.0,
        "rows": rows,
    }


def sweeps(rows: list[dict], thresholds: list[float]) -> list[dict]:
    """Hit rate and abstention had the learned check demoted every `answered` below each threshold
    (from one run in which it scored them all and demoted none)."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    table = []
    for t in thresholds:
        def demoted(r):
            return r["status"] == "answered" and r["answerability"] is not None and r["answerability"] < t
        hit = sum(r["hit"] and not demoted(r) for r in answerable) / max(1, len(answerable))
        abstain = sum(r["abstained"] or demoted(r) for r in unanswerable) / max(1, len(unanswerable))
        table.append({"threshold": t, "answer_hit_rate": round(hit, 3), "abstention_rate": round(abstain, 3),
                      "balanced_mean": round((hit + abstain) / 2, 3)})
    return table


def auc(rows: list[dict]) -> float | None:
    """How well P(answerable) alone ranks answerable questions above unanswerable ones (rows it scored)."""
    pos = [r["answerability"] for r in rows if r["answerable"] and r["answerability"] is not None]
    neg = [r["answerability"] for r in rows if not r["answerable"] and r["answerability"] is not None]
    if not pos or not neg:
        return None
    return round(sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg)), 3)


def before(rev: str, limit: int | None) -> dict:
    """The same measurement for the code at `rev`, in a temporary worktree, as a child process."""
    with tempfile.TemporaryDirectory(prefix="lantern-answerability-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True, capture_output=True)
        try:
            command = [sys.executable, __file__, "--tree", str(tree), "--home", str(Path(tmp) / "home"), "--json", "--rows"]
            if limit:
                command += ["--limit", str(limit)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            return json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)


def summary(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "rows"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REV", help="also measure the code at REV in the same run")
    parser.add_argument("--limit", type=int, help="only the first N questions (a quick look)")
    parser.add_argument("--home", help="LANTERN_HOME to use (and keep); default: a temporary one")
    parser.add_argument("--dump", help="write one JSON row per question here")
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    parser.add_argument("--sweep", action="store_true", help="score every answer with the learned check without applying "
                        "it, and print hit rate and abstention at each threshold (choosing the shipped one)")
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--rows", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (EVAL / "questions_dev.jsonl").exists():
        raise SystemExit(f"needs the SQuAD 2.0 dev data at {EVAL} (the shared eval folder beside the repository)")

    with tempfile.TemporaryDirectory(prefix="lantern-answerability-") as tmp:
        report = measure(Path(args.home) if args.home else Path(tmp), args.limit, args.sweep)
    if args.dump:
        with open(args.dump, "w") as out:
            for row in report["rows"]:
                out.write(json.dumps(row) + "\n")
    if args.sweep:
        table = sweeps(report["rows"], [round(0.05 * i, 2) for i in range(20)])
        print(json.dumps({"auc_on_answered": auc([r for r in report["rows"] if r["status"] == "answered"]),
                          "thresholds": table}) if args.json else
              "\n".join(f"threshold {r['threshold']:.2f}: hit rate {r['answer_hit_rate']:.3f}, abstention "
                        f"{r['abstention_rate']:.3f}, balanced {r['balanced_mean']:.3f}" for r in table))
        return
    if args.rows:  # a child of --before: everything, for the parent
        print(json.dumps(report))
        return
    result = {"now": summary(report)}
    if args.before:
        result[f"before ({args.before})"] = summary(before(args.before, args.limit))
    if args.json:
        print(json.dumps(result))
        return
    for name, figures in result.items():
        print(f"{name}: answer hit rate {figures['answer_hit_rate']:.3f} ({figures['answerable']} answerable), "
              f"abstention {figures['abstention_rate']:.3f} ({figures['unanswerable']} unanswerable), balanced mean "
              f"{figures['balanced_mean']:.3f}; answerable questions abstained on {figures['answerable_abstained']:.3f}; "
              f"{figures['seconds_per_question_median']:.2f} s per question (median)")


if __name__ == "__main__":
    main()
