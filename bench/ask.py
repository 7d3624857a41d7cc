"""`lantern ask` benchmark: per-stage latency, answer status and citation validity on the shipped kb/.

Ingests kb/ into a temporary LANTERN_HOME, then answers the questions in data/kb_questions.jsonl
(some answerable from kb/, some not) with the configured reasoner (extractive when no weights are
installed; `--model DIR` for a snapshot, e.g. a random one from `lantern bench --shape tiny`).
Reports the median seconds per stage, how often the status matched whether the answer is in kb/,
and citation validity: every claim's source was among the retrieved passages and its evidence
quote is verbatim at the stated lines of the source file (must be 100%).

`--overhead REV` measures what the event stream costs: the same questions answered, in one run,
by REV's `answer()` (e.g. 075fac0, the last blocking loop, checked out with `git archive` into a
temporary folder) and by this tree's, both through `answer()` and through `events()` serialised
to JSON lines as `lantern ask --events` does. Each consumer runs in its own process over the
same ingested knowledge base, in alternating order over `--rounds` rounds, after one warm-up
pass; the figure is the median over questions of each question's median total seconds.
`--model tiny` makes a random tiny checkpoint, so the token path is measured too.

    .venv/bin/python bench/ask.py [--model DIR|tiny] [--json]
    .venv/bin/python bench/ask.py --overhead 075fac0 [--model tiny] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "--tree" in sys.argv:  # a child process of --overhead: import the lantern of the tree it was given
    sys.path.insert(0, sys.argv[sys.argv.index("--tree") + 1])
else:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANCE_LOG", "error")

from lantern.eval.metrics import citation_validity  # noqa: E402
from lantern.knowledge import KnowledgeBase  # noqa: E402
from lantern.loop import answer  # noqa: E402
from lantern.settings import load_settings  # noqa: E402


def questions() -> list[dict]:
    return [json.loads(line) for line in (ROOT / "data" / "kb_questions.jsonl").open()]


def tiny_checkpoint(folder: str) -> str:
    from lantern.runtime.testing import make_random_checkpoint

    return str(make_random_checkpoint(Path(folder) / "ouro-tiny", "tiny", seed=1, gate_bias=1.0))


def child(tree: str, consumer: str, home: str, model: str | None, repeats: int) -> None:
    """Time every question `repeats` times with one consumer (after a warm-up pass); print JSON."""
    settings = load_settings({"home": home} | ({"model": model, "dtype": "float32", "max_new_tokens": 32} if model else {}))
    kb = KnowledgeBase.open(settings)
    if consumer == "events":
        from lantern.events import to_json
        from lantern.loop import events

        sink = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)

        def run(question: str) -> None:
            for event in events(question, settings, kb=kb):
                sink.write(to_json(event) + "\n")
                sink.flush()
    else:
        def run(question: str) -> None:
            answer(question, settings, kb=kb)

    items = [item["question"] for item in questions()]
    for question in items:  # warm-up: embedder, model, prompt files
        run(question)
    times: dict[str, list[float]] = {q: [] for q in items}
    for _ in range(repeats):
        for question in items:
            started = time.perf_counter()
            run(question)
            times[question].append(time.perf_counter() - started)
    print(json.dumps(times))


def overhead(rev: str, model: str | None, rounds: int, repeats: int) -> dict:
    """Median seconds per question for REV's answer() and this tree's answer() and events(), one run."""
    with tempfile.TemporaryDirectory() as scratch:
        old_tree = Path(scratch) / "baseline"
        old_tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "lantern", "prompts"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
        home = str(Path(scratch) / "home")
        KnowledgeBase.open(load_settings({"home": home})).ingest([ROOT / "kb"])
        model_dir = tiny_checkpoint(scratch) if model == "tiny" else model
        consumers = {f"{rev} answer()": (str(old_tree), "answer"), "answer()": (str(ROOT), "answer"),
                     "events() as --events": (str(ROOT), "events")}
        samples: dict[str, dict[str, list[float]]] = {name: {} for name in consumers}
        for round_number in range(rounds):
            order = list(consumers) if round_number % 2 == 0 else list(reversed(consumers))
            for name in order:
                tree, consumer = consumers[name]
                command = [sys.executable, str(Path(__file__).resolve()), "--child", consumer, "--tree", tree, "--home", home,
                           "--repeats", str(repeats)] + (["--model", model_dir] if model_dir else [])
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                for question, seconds in json.loads(done.stdout.strip().splitlines()[-1]).items():
                    samples[name].setdefault(question, []).extend(seconds)
    medians = {name: statistics.median(statistics.median(v) for v in per_question.values()) for name, per_question in samples.items()}
    baseline = medians[f"{rev} answer()"]
    return {
        "baseline": rev, "model": "tiny random checkpoint" if model == "tiny" else (model or "extractive (no weights)"),
        "median_total_seconds": {name: round(value, 4) for name, value in medians.items()},
        "overhead_vs_baseline": {name: f"{100 * (value / baseline - 1):+.1f}%" for name, value in medians.items() if name != f"{rev} answer()"},
        "rounds": rounds, "timed_answers_per_consumer": rounds * repeats * len(questions()),
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="snapshot directory, model name, or 'tiny' for a random tiny checkpoint (default: the model setting)")
    parser.add_argument("--overhead", metavar="REV", help="measure the event stream against REV's answer() (see above)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=["answer", "events"], help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.tree, args.child, args.home, args.model, args.repeats)
    if args.overhead:
        report = overhead(args.overhead, args.model, args.rounds, args.repeats)
        print(json.dumps(report, indent=None if args.json else 1))
        return
    with tempfile.TemporaryDirectory() as home:
        model = tiny_checkpoint(home) if args.model == "tiny" else args.model
        overrides = {"home": home} | ({"model": model} if model else {})
        settings = load_settings(overrides)
        kb = KnowledgeBase.open(settings)
        kb.ingest([ROOT / "kb"])
        stages: dict[str, list[float]] = {}
        matched = valid = cited = 0
        statuses = []
        model = ""
        for item in questions():
            result = answer(item["question"], settings, kb=kb)
            model = result.model or model
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
            statuses.append(result.status)
            matched += (result.status != "not_in_kb") == item["in_kb"]
            good, total = citation_validity(result)
            valid, cited = valid + good, cited + total
    n = len(questions())
    report = {
        "questions": n, "model": model or "none",
        "status_matches_kb": f"{matched}/{n}",
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "citation_validity": f"{valid}/{cited}" + (f" ({100 * valid / cited:.0f}%)" if cited else ""),
        "median_seconds_per_stage": {k: round(statistics.median(v), 4) for k, v in stages.items()},
        "note": "the first question also pays for loading the embedder (and the model); the medians are not moved by it",
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
    }
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
