"""`lantern serve` benchmark: aggregate decode tok/s at 1, 4 and 16 concurrent streams.

Starts `lantern serve` on a random checkpoint of an official or small shape (`--shape`, made once
under the temporary home; speed does not depend on the weights' values), then sends N identical-
option requests at once (each its own prompt, greedy, `--new-tokens` each, streamed over the Ollama
API) and reports the aggregate generated tokens per second over the wall time of the round, for
N = 1, 4, 16, plus the ratio to one stream. Requests with equal options share one batched decode.

    .venv/bin/python bench/serve.py [--shape small|1.4b] [--new-tokens 16] [--mode fast|deep] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2 as httpx  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(home: str, checkpoint: Path, dtype: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "lantern", "--home", home, "--set", f"dtype={dtype}", "serve", "--model",
                                str(checkpoint), "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"lantern serve did not start: {process.stderr.read().decode()[-300:]}")
            time.sleep(0.2)
    raise SystemExit("lantern serve did not start within 600 s")


def one_stream(url: str, model: str, prompt: str, new_tokens: int, mode: str) -> int:
    """Generated tokens of one streamed request (eval_count of its last line)."""
    with httpx.stream("POST", f"{url}/api/generate", timeout=3600, json={
            "model": model, "prompt": prompt, "lantern": {"mode": mode},
            "options": {"num_predict": new_tokens, "temperature": 0, "stop": []}}) as reply:
        last = None
        for line in reply.iter_lines():
            if line:
                last = json.loads(line)
    return int(last["eval_count"])


def round_of(url: str, model: str, streams: int, new_tokens: int, mode: str) -> dict:
    prompts = [f"Stream {i} of {streams}: describe a lighthouse at night in a few words." for i in range(streams)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=streams) as pool:
        tokens = list(pool.map(lambda p: one_stream(url, model, p, new_tokens, mode), prompts))
    seconds = time.perf_counter() - started
    return {"streams": streams, "tokens": sum(tokens), "seconds": round(seconds, 2), "aggregate_tok_s": round(sum(tokens) / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="small", help="random checkpoint shape: tiny, small, 1.4b, 2.6b")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--mode", default="fast", choices=["fast", "deep"])
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from lantern.runtime.bench import random_checkpoint_dir

    with tempfile.TemporaryDirectory() as home:
        checkpoint = random_checkpoint_dir(Path(home), args.shape)
        process, url = start(home, checkpoint, args.dtype)
        try:
            model = checkpoint.name
            round_of(url, model, 1, 4, args.mode)  # warm-up
            results = {}
            for streams in (1, 4, 16):
                runs = [round_of(url, model, streams, args.new_tokens, args.mode) for _ in range(args.rounds)]
                results[streams] = max(runs, key=lambda r: r["aggregate_tok_s"]) | {
                    "aggregate_tok_s_runs": [r["aggregate_tok_s"] for r in runs]}
        finally:
            process.terminate()
            process.wait(timeout=30)
    single = statistics.median(results[1]["aggregate_tok_s_runs"])
    report = {"shape": args.shape, "dtype": args.dtype, "mode": args.mode, "new_tokens_per_stream": args.new_tokens,
              "rounds": results, "speedup_vs_one_stream": {n: round(statistics.median(r["aggregate_tok_s_runs"]) / single, 2)
                                                           for n, r in results.items()},
              "machine": f"{os.cpu_count()} CPU cores, no GPU"}
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
