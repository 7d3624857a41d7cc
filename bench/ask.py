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
to JSON lines as `lantern ask --events` does. Each consumer is a warm process of its own over the
same ingested knowledge base; each question goes to the three one right after the other (the
first one rotating), `--rounds` times; the figure is the median of the paired ratios.
`--model tiny` makes a random tiny checkpoint, so the token path is measured too.

    .venv/bin/python bench/ask.py [--model DIR|tiny] [--json]
    .venv/bin/python bench/ask.py --overhead 075fac0 [--model tiny] [--rounds 10] [--json]
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


def child(tree: str, consumer: str, home: str, model: str | None) -> None:
    """A long-lived worker: answers every question once (warm-up), says "ready", then answers the
    question whose number arrives on each stdin line and replies with the seconds it took.
    Lantern's own tool servers are off, as they did not exist at the baseline: with them the model's
    prompt lists their tools, and the comparison would measure a longer prompt, not the events."""
    os.environ["LANTERN_BUILTIN_TOOLS"] = "false"
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
    print("ready", flush=True)
    for line in sys.stdin:
        started = time.perf_counter()
        run(items[int(line)])
        print(time.perf_counter() - started, flush=True)


def overhead(rev: str, model: str | None, rounds: int) -> dict:
    """REV's answer() against this tree's answer() and events(), each in its own warm process,
    asked the same question one right after the other (rotating who goes first), so slow drifts in
    the machine's load fall on all three alike; the overhead is the median of the paired ratios."""
    with tempfile.TemporaryDirectory() as scratch:
        old_tree = Path(scratch) / "baseline"
        old_tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "lantern", "prompts"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
        home = str(Path(scratch) / "home")
        KnowledgeBase.open(load_settings({"home": home})).ingest([ROOT / "kb"])
        model_dir = tiny_checkpoint(scratch) if model == "tiny" else model
        baseline = f"{rev} answer()"
        consumers = {baseline: (str(old_tree), "answer"), "answer()": (str(ROOT), "answer"), "events() as --events": (str(ROOT), "events")}
        workers = {}
        for name, (tree, consumer) in consumers.items():
            command = [sys.executable, str(Path(__file__).resolve()), "--child", consumer, "--tree", tree, "--home", home] + (
                ["--model", model_dir] if model_dir else [])
            workers[name] = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for worker in workers.values():
            assert worker.stdout.readline().strip() == "ready"
        seconds: dict[str, list[float]] = {name: [] for name in consumers}
        names = list(consumers)
        turn = 0
        for _ in range(rounds):
            for number in range(len(questions())):
                for name in names[turn % 3:] + names[: turn % 3]:
                    workers[name].stdin.write(f"{number}\n")
                    workers[name].stdin.flush()
                    seconds[name].append(float(workers[name].stdout.readline()))
                turn += 1
        for worker in workers.values():
            worker.stdin.close()
            worker.wait(timeout=60)
    paired = {name: statistics.median(new / old for new, old in zip(seconds[name], seconds[baseline])) for name in names[1:]}
    return {
        "baseline": rev, "model": "tiny random checkpoint" if model == "tiny" else (model or "extractive (no weights)"),
        "median_total_seconds": {name: round(statistics.median(v), 4) for name, v in seconds.items()},
        "overhead_vs_baseline_paired_median": {name: f"{100 * (ratio - 1):+.1f}%" for name, ratio in paired.items()},
        "timed_answers_per_consumer": len(seconds[baseline]),
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="snapshot directory, model name, or 'tiny' for a random tiny checkpoint (default: the model setting)")
    parser.add_argument("--overhead", metavar="REV", help="measure the event stream against REV's answer() (see above)")
    parser.add_argument("--rounds", type=int, default=10, help="times every question is asked of each consumer (--overhead)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=["answer", "events"], help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.tree, args.child, args.home, args.model)
    if args.overhead:
        report = overhead(args.overhead, args.model, args.rounds)
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
