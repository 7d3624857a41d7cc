"""Runs end to end: per-item records as they finish, --resume after a kill, the leaderboard and
`lantern eval compare`, `lantern eval --json` on a tiny checkpoint, the golden suite (extractive,
and with a scripted model and a real calculator), BFCL with a scripted model."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lantern.eval import leaderboard, runner
from lantern.eval.suites import SUITES, EvalContext, Suite, find_data, ratio, share
from lantern.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
DATA, _ = find_data(None)
needs_data = pytest.mark.skipif(DATA is None, reason="no shared eval data (../shared/eval) on this machine")


def run_cli(capsys, *args) -> tuple[int, str, str]:
    from lantern.cli import main

    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


class Counting(Suite):
    """Five items; item i is correct when i is even; `stop_at` raises KeyboardInterrupt there once."""

    name = "counting"

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at, self.ran = stop_at, []

    def items(self, ctx, split):
        return [{"id": f"n{i}", "i": i} for i in range(5)]

    def run(self, ctx, item):
        if item["i"] == self.stop_at:
            self.stop_at = None
            raise KeyboardInterrupt
        self.ran.append(item["id"])
        return {"id": item["id"], "correct": item["i"] % 2 == 0, "tokens": 10, "seconds": 0.01}

    def metrics(self, records):
        return {"accuracy": share("correct"), "tokens_per_correct": ratio("tokens", "correct")}


def item_ids(path: Path) -> list[str]:
    """The ids of the item records of a run file (a line still being written is skipped)."""
    ids = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row["kind"] == "item":
            ids.append(row["record"]["id"])
    return ids


def test_records_are_written_as_items_finish_and_a_resumed_run_skips_them():
    ctx = EvalContext(load_settings(), None)
    suite = Counting(stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        runner.run(suite, ctx, "test", progress=False)
    runs = list((ctx.settings.home / "eval" / "runs").glob("*.jsonl"))
    assert len(runs) == 1 and item_ids(runs[0]) == ["n0", "n1", "n2"]  # on disk before the interruption
    assert not runner.leaderboard_path(ctx.settings).exists()  # an unfinished run is not on the leaderboard
    suite.ran.clear()
    result = runner.run(suite, ctx, "test", resume=True, progress=False)
    assert suite.ran == ["n3", "n4"] and result.resumed and result.resumed_items == 3 and result.path == runs[0]
    assert item_ids(runs[0]) == ["n0", "n1", "n2", "n3", "n4"]
    assert result.entry["n"] == 5 and result.entry["accuracy"] == pytest.approx(3 / 5)
    assert result.entry["metrics"]["tokens_per_correct"]["value"] == pytest.approx(50 / 3)
    # A finished run is never resumed: the next --resume starts a new one.
    again = runner.run(suite, ctx, "test", resume=True, progress=False)
    assert again.path != runs[0] and not again.resumed and again.resumed_items == 0


def test_resume_only_continues_a_run_of_the_same_mode_and_repairs_a_cut_line():
    deep = EvalContext(load_settings({"mode": "deep"}), None)
    with pytest.raises(KeyboardInterrupt):
        runner.run(Counting(stop_at=2), deep, "test", progress=False)
    path = next((deep.settings.home / "eval" / "runs").glob("*.jsonl"))
    with path.open("a") as out:
        out.write('{"kind": "item", "record": {"id": "n2", "corr')  # a kill mid-write
    fast = runner.run(Counting(), EvalContext(load_settings({"mode": "fast"}), None), "test", resume=True, progress=False)
    assert fast.path != path and fast.resumed_items == 0
    resumed = runner.run(Counting(), deep, "test", resume=True, progress=False)
    assert resumed.path == path and resumed.resumed_items == 2 and item_ids(path) == ["n0", "n1", "n2", "n3", "n4"]


def test_leaderboard_records_and_compare_side_by_side(capsys):
    for mode in ("deep", "fast"):
        runner.run(Counting(), EvalContext(load_settings({"mode": mode}), None), "test", progress=False)
    entries = leaderboard.read(runner.leaderboard_path(load_settings()))
    assert [e["mode"] for e in entries] == ["deep", "fast"]
    for entry in entries:
        assert {"suite", "split", "backend", "model", "mode", "commit", "machine", "metrics", "seconds", "n"} <= set(entry)
        low, high = entry["metrics"]["accuracy"]["ci"]
        assert low <= entry["metrics"]["accuracy"]["value"] <= high
    code, out, err = run_cli(capsys, "eval", "compare", "--suite", "counting")
    assert code == 0, err
    assert "DEEP" in out and "FAST" in out and "accuracy" in out and "0.600 [" in out
    code, out, _ = run_cli(capsys, "eval", "compare", "--suite", "counting", "--json")
    assert code == 0 and [r["mode"] for r in json.loads(out)[0]["runs"]] == ["deep", "fast"]
    code, _, err = run_cli(capsys, "eval", "compare", "--suite", "nothing-like-it")
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1


def test_eval_without_a_suite_or_with_a_missing_model_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "eval")
    assert code == 1 and "--suite is required" in err and "gsm8k" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "eval", "--suite", "gsm8k", "--model", str(tmp_path / "no-such-model"))
    assert code == 1 and err.startswith("error: ") and "no-such-model" in err and err.count("\n") == 1
    assert not (tmp_path / "lantern-home" / "eval" / "runs").exists()


# --- whole processes on a tiny checkpoint ----------------------------------------------------------

@pytest.fixture
def tiny(tmp_path):
    from lantern.runtime.testing import make_random_checkpoint

    return make_random_checkpoint(tmp_path / "tiny", "tiny", seed=1)


def lantern(*args: str) -> list[str]:
    return [sys.executable, "-m", "lantern", *args]


def child_env(**extra: str) -> dict[str, str]:
    return os.environ | {"LANTERN_DTYPE": "float32"} | extra


@needs_data
def test_eval_gsm8k_json_on_a_tiny_checkpoint(tiny):
    done = subprocess.run(lantern("eval", "--model", str(tiny), "--suite", "gsm8k", "--limit", "3", "--json"), cwd=ROOT,
                          env=child_env(LANTERN_MAX_NEW_TOKENS="16"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["headline"] == "accuracy" and 0.0 <= report["accuracy"] <= 1.0 and report["n"] == 3
    assert report["backend"] == "ouro" and report["mode"] == "deep"
    assert 1.0 <= report["metrics"]["avg_exit_steps"] <= 4.0 and report["metrics"]["weight_bytes_per_token"] > 0
    assert report["metrics"]["tokens_per_item"] == 16  # a random model never says EOS in 16 tokens here
    rows = [json.loads(line) for line in Path(report["records"]).read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["run", "item", "item", "item", "summary"]
    assert all(len(r["record"]["output"]) > 0 and r["record"]["gold"] for r in rows[1:4])
    board = leaderboard.read(Path(report["leaderboard"]))
    assert len(board) == 1 and board[0]["run_id"] == report["run_id"] and board[0]["commit"]


@needs_data
def test_resume_after_the_process_is_killed(tiny):
    command = lantern("eval", "--model", str(tiny), "--suite", "gsm8k", "--limit", "5", "--mode", "fast")
    env = child_env(LANTERN_MAX_NEW_TOKENS="200")
    runs = Path(os.environ["LANTERN_HOME"]) / "eval" / "runs"
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    recorded: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and child.poll() is None:
        files = list(runs.glob("*.jsonl")) if runs.is_dir() else []
        if files and (recorded := item_ids(files[0])):
            child.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    child.wait(timeout=60)
    assert 1 <= len(recorded) < 5, f"the run finished before it could be killed ({child.stderr.read()[-300:]})"
    done = subprocess.run(command + ["--resume", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["n"] == 5 and report["resumed_items"] >= len(recorded)
    ids = item_ids(Path(report["records"]))
    assert len(ids) == len(set(ids)) == 5 and ids[: len(recorded)] == recorded
    assert len(list(runs.glob("*.jsonl"))) == 1


@needs_data
def test_bfcl_on_a_tiny_checkpoint_computes_its_metrics(tiny):
    settings = load_settings({"model": str(tiny), "dtype": "float32", "max_new_tokens": 16})
    result = runner.run(SUITES["bfcl-simple"], EvalContext(settings, DATA, require_model=True), "test", limit=2, progress=False)
    metrics = result.entry["metrics"]
    assert result.entry["n"] == 2 and metrics["call_rate"]["value"] is not None and metrics["accuracy"]["value"] is not None
    assert metrics["avg_exit_steps"]["value"] is not None


@needs_data
def test_bfcl_with_a_scripted_model_scores_validity_and_ast_match(monkeypatch):
    from lantern.backends import complete as completions

    def scripted(settings, messages, max_tokens, stop=None, tools=None):
        assert messages[0]["role"] == "system" and "CALL_TOOL" in messages[0]["content"]  # the text protocol
        asked = messages[-1]["content"]
        if "area of a triangle" in asked:  # simple_python_0, in the dev half: the gold call
            text = 'CALL_TOOL calculate_triangle_area {"base": 10, "height": 5}'
        elif "factorial" in asked:  # simple_python_1: valid, wrong value
            text = 'CALL_TOOL math.factorial {"number": 6}'
        else:  # an invented argument: invalid
            text = 'CALL_TOOL math.hypot {"x": 4, "y": 5, "w": 1}'
        return completions.Completion(text=text, tokens=12, exit_steps=None, seconds=0.01, prompt_tokens=50)

    monkeypatch.setattr(completions, "complete", scripted)
    result = runner.run(SUITES["bfcl-simple"], EvalContext(load_settings(), DATA), "dev", limit=3, progress=False)
    metrics = {k: v["value"] for k, v in result.entry["metrics"].items()}
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert metrics["tool_call_validity"] == pytest.approx(2 / 3) and metrics["call_rate"] == 1.0
    assert metrics["tokens_per_correct"] == 36 and metrics["weight_bytes_per_correct"] is None  # unknown, not zero


# --- the golden suite ----------------------------------------------------------------------------------

def test_golden_suite_in_extractive_mode_measures_grounding():
    ctx = EvalContext(load_settings(), None)  # no weights installed: the answer loop quotes evidence
    result = runner.run(SUITES["golden"], ctx, "test", progress=False)
    entry, metrics = result.entry, {k: v["value"] for k, v in result.entry["metrics"].items()}
    assert entry["n"] == 21 and entry["backend_used"] == "extractive"
    assert metrics["citation_validity"] == 1.0  # every quote verbatim at its lines, from a retrieved passage
    assert metrics["grounding_precision"] == 1.0  # every kept extractive claim cites the passage it quotes
    assert metrics["answer_accuracy"] > 0 and metrics["citation_recall"] > 0
    assert metrics["abstention_accuracy"] is not None and metrics["continuation_accuracy"] is not None
    assert metrics["action_correctness"] == 0.0 and metrics["tool_call_validity"] is None  # no tools without a model
    records = [json.loads(line)["record"] for line in result.path.read_text().splitlines() if '"kind": "item"' in line]
    answerable = [r for r in records if r["type"] == "answerable"]
    assert all("facts_found" in r and r["kept_with_gold"] == r["kept"] for r in answerable)


class Scripted:
    """A fake model for the answer loop: replies in order (a reply may be a function of the evidence)."""

    name = backend = "scripted"
    rewrites = uses_tools = True

    def __init__(self, *replies) -> None:
        self.replies = list(replies)

    def judge(self, template, exit_threshold):
        return None

    def stream(self, question, evidence, feedback=None, tools=None, cancel=None):
        from lantern.backends.text_stream import ReaderStream
        from lantern.records import Draft

        reply = self.replies.pop(0)
        text = reply(evidence) if callable(reply) else reply
        reader = ReaderStream()
        for word in re.findall(r"\S+\s*", text):
            yield from reader.feed(word)
        yield from reader.finish()
        answer_text, thinking, calls, rejected = reader.result()
        yield Draft(text=answer_text, thinking=thinking, tool_calls=calls, rejected_calls=rejected, model=self.name)


def test_golden_scoring_with_a_scripted_model_and_a_real_calculator():
    settings = load_settings({"mcp_servers": {"calc": {"command": sys.executable, "args": [str(ROOT / "tools" / "calculator.py")]}}})
    ctx = EvalContext(settings, None)
    suite = SUITES["golden"]
    items = {i["id"]: i for i in suite.items(ctx, "dev") + suite.items(ctx, "test")}
    suite.prepare(ctx, list(items.values()))

    def cite(needle):
        return lambda evidence: next(i for i, e in enumerate(evidence, 1) if needle in e.text)

    ctx.reasoner = Scripted('CALL_TOOL calculate {"expression": "2340 * 17.5 / 100"}',
                            lambda ev: f"2340 * 17.5 / 100 is 409.5 [{cite('returned')(ev)}].")
    tool = suite.run(ctx, items["tool-01"])
    assert tool["correct"] and tool["calls"] == tool["valid_calls"] == 1 and tool["made"][0]["name"] == "calculate"
    ctx.reasoner = Scripted('CALL_TOOL calculate {"expr": "2340 * 17.5 / 100"}', "I cannot answer from the passages.")
    invalid = suite.run(ctx, items["tool-01"])
    assert not invalid["correct"] and invalid["calls"] == 1 and invalid["valid_calls"] == 0

    ctx.reasoner = Scripted(lambda ev: f"Ouro-1.4B has 24 layers with a hidden size of 2048 [{cite('24 layers')(ev)}].")
    answered = suite.run(ctx, items["answerable-02"])
    assert answered["correct"] and answered["grounded"] == answered["kept"] == 1 and answered["cited_gold"]
    unsupported = lambda ev: f"Ouro-1.4B runs on a quantum annealer built by Intel [{cite('24 layers')(ev)}]."  # noqa: E731
    ctx.reasoner = Scripted(unsupported, unsupported)  # the draft and its rewrite with the verifier's feedback
    wrong = suite.run(ctx, items["answerable-02"])
    assert not wrong["correct"] and wrong["kept"] == 0 and wrong["dropped"] >= 1

    ctx.reasoner = Scripted("I cannot answer from the passages.")
    abstained = suite.run(ctx, items["unanswerable-01"])
    assert abstained["correct"] and abstained["status"] == "not_in_kb"


# --- an OpenAI-compatible endpoint -------------------------------------------------------------------

def fake_openai():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fake_openai", ROOT / "tests" / "loop" / "fake_openai.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeOpenAI


@needs_data
def test_bfcl_over_an_endpoint_uses_native_tools_with_api_safe_names(capsys):
    replies = [{"tool": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}},  # simple_python_0
               {"tool": "math_factorial", "arguments": {"number": 5}}]  # simple_python_1: `math.factorial` on the wire
    with fake_openai()(replies) as server:
        code, out, err = run_cli(capsys, "eval", "--suite", "bfcl-simple", "--split", "dev", "--limit", "2", "--endpoint", server.base_url,
                                 "--model", "fake-model", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["backend"] == "openai" and report["accuracy"] == 1.0 and report["metrics"]["tool_call_validity"] == 1.0
    sent = [t["function"]["name"] for t in server.requests[1]["tools"]]
    assert sent == ["math_factorial"] and not server.requests[0].get("stream")
    assert report["metrics"]["weight_bytes_per_token"] is None  # an endpoint does not say what it read


@needs_data
def test_gsm8k_over_an_endpoint(capsys):
    with fake_openai()(["Janet sells 9 eggs at $2.\n#### 18", "I think it is 4."]) as server:
        code, out, err = run_cli(capsys, "eval", "--suite", "gsm8k", "--split", "dev", "--limit", "2", "--endpoint", server.base_url,
                                 "--model", "fake-model", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["accuracy"] == 0.5 and report["n"] == 2 and report["mode"] is None  # DEEP/FAST is Ouro's alone
    assert "#### <number>" in server.requests[0]["messages"][0]["content"]
