"""Lantern evaluating itself over HTTP, end to end, no network: `lantern serve` on a tiny random
checkpoint, and `lantern eval` with the `openai` backend pointed at it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
from test_http_api import start  # noqa: E402

from scripted import ROOT  # noqa: E402

DATA = ROOT.parent / "shared" / "eval"


@pytest.mark.skipif(not (DATA / "gsm8k" / "test.jsonl").exists(), reason="../shared/eval/gsm8k is not on this machine")
def test_lantern_eval_through_lantern_serve(tmp_path, tiny):
    process, url = start(tmp_path / "serve-home", tiny)
    try:
        eval_home = tmp_path / "eval-home"
        done = subprocess.run([sys.executable, "-m", "lantern", "--home", str(eval_home), "eval", "--suite", "gsm8k", "--limit", "2",
                               "--endpoint", f"{url}/v1", "--model", tiny.name, "--json"], capture_output=True, text=True, cwd=ROOT,
                              timeout=600)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert done.returncode == 0, done.stderr[-600:]
    result = json.loads(done.stdout)
    assert result["n"] == 2 and "accuracy" in result
    lines = [json.loads(line) for line in Path(result["records"]).read_text().splitlines() if line.strip()]
    items = [line["record"] for line in lines if line["kind"] == "item"]
    assert len(items) == 2 and all(item["tokens"] > 0 and item["prompt_tokens"] > 0 for item in items)  # the endpoint's usage came back
    board = [json.loads(line) for line in (eval_home / "eval" / "leaderboard.jsonl").read_text().splitlines()]
    assert board[-1]["backend"] == "openai" and board[-1]["model"] == tiny.name and board[-1]["suite"] == "gsm8k"
