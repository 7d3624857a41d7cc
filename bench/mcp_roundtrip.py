"""MCP benchmark: `lantern mcp` round trips (stdio, HTTP), 50 concurrent HTTP clients, and the
client's persistent sessions against a process per call.

Ingests the shipped kb/ into a temporary LANTERN_HOME, then, in one run on one machine:
1. Server round trip: `lantern mcp` started as MCP hosts start it (a separate process), the
   official Python SDK client calls `search` with one query over and over, over stdio and over
   streamable HTTP; after warm-up the query's embedding is cached, so p50/p95 exclude it. The
   same search run in this process (no MCP) is timed too, so what the protocol adds shows apart
   from what LanceDB's two searches cost.
2. Concurrency: 50 HTTP clients at once, each with its own session and its own query, 20 searches
   each; every result must equal what that query returned when asked alone (no errors, nothing
   mixed up between sessions).
3. Client: Lantern's MCPTools (one live session per server) calling the calculator tool, against
   the previous way (a fresh server process and session per call, discovery included), alternated.

    .venv/bin/python bench/mcp_roundtrip.py [--calls 200] [--json]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANCE_LOG", "error")

import anyio  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402

QUERIES = [
    "exit gate", "loop steps per token", "DEEP mode", "FAST mode", "knowledge base storage", "verifier claims", "citations",
    "hybrid search", "LanceDB", "MiniLM embeddings", "chunking headings", "session files", "MCP tools", "calculator",
    "Q-exit threshold", "KV cache", "bfloat16", "int8 quantization", "prefill speed", "decode speed", "Ouro model sizes",
    "looped language model", "early exit", "cumulative exit probability", "converge rounds", "unsupported claims",
    "extractive mode", "model pull", "offline", "settings", "config.toml", "LANTERN_HOME", "doctor", "ingest folders",
    "PDF text", "HTML pages", "line spans", "verbatim quotes", "confidence calibration", "WiCE", "negations",
    "numbers in claims", "retrieval latency", "reciprocal rank fusion", "full-text index", "neighbour boost",
    "thinking models", "chat template", "tool calls validated", "JSON Schema",
]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"p50_ms": round(1000 * statistics.median(ordered), 3), "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 3)}


def lantern_command(home: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "lantern", "--home", home, *args]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_http(home: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(lantern_command(home, "mcp", "--http", "--port", str(port)), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"lantern mcp --http did not start: {process.stderr.read().decode()[-300:]}")
            time.sleep(0.1)
    raise SystemExit("lantern mcp --http did not start within 60 s")


def passages(result) -> list[tuple[str, int, int]]:
    return [(p["source"], p["start_line"], p["end_line"]) for p in result.structured_content["passages"]]


async def round_trips(target, calls: int) -> dict[str, float]:
    async with Client(target) as client:
        for _ in range(10):  # warm-up: the embedder loads, the query's vector is cached
            await client.call_tool("search", {"query": "exit gate", "k": 5})
        seconds = []
        for _ in range(calls):
            started = time.perf_counter()
            result = await client.call_tool("search", {"query": "exit gate", "k": 5})
            seconds.append(time.perf_counter() - started)
            assert not result.is_error
    return percentiles(seconds)


def in_process_search(home: str, calls: int) -> dict[str, float]:
    from lantern.knowledge import KnowledgeBase
    from lantern.settings import load_settings

    kb = KnowledgeBase.open(load_settings({"home": home}))
    for _ in range(10):
        kb.search("exit gate", 5, "hybrid")
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        kb.search("exit gate", 5, "hybrid")
        seconds.append(time.perf_counter() - started)
    return percentiles(seconds)


async def concurrent_clients(url: str, clients: int, searches: int) -> dict:
    expected: dict[str, list] = {}
    async with Client(url) as client:
        for query in QUERIES[:clients]:
            expected[query] = passages(await client.call_tool("search", {"query": query, "k": 5}))
    errors, mixed, done = [], 0, 0

    async def one(query: str) -> None:
        nonlocal mixed, done
        try:
            async with Client(url) as client:
                for _ in range(searches):
                    result = await client.call_tool("search", {"query": query, "k": 5})
                    if result.is_error:
                        errors.append(result.content[0].text[:100])
                    elif passages(result) != expected[query] or result.structured_content["query"] != query:
                        mixed += 1
                    done += 1
        except Exception as exc:  # a broken session counts as an error, and the rest go on
            errors.append(f"{exc.__class__.__name__}: {exc}"[:100])

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for query in QUERIES[:clients]:
            group.start_soon(one, query)
    seconds = time.perf_counter() - started
    return {"clients": clients, "searches_each": searches, "completed": done, "errors": len(errors), "error_samples": errors[:3],
            "mixed_up_results": mixed, "seconds": round(seconds, 2), "searches_per_second": round(done / seconds, 1)}


def client_overhead(calls: int) -> dict:
    """Median ms per calculator call: persistent MCPTools session vs a new process and session per call."""
    from lantern.records import ToolCall
    from lantern.toolcalls.client import MCPTools

    spec = {"command": sys.executable, "args": [str(ROOT / "tools" / "calculator.py")]}
    persistent = MCPTools({"calculator": spec})
    persistent.tools()  # start and discover once, as the first answer that needs tools does
    fresh_params = StdioServerParameters(command=spec["command"], args=spec["args"])

    async def per_call() -> None:  # what MCPToolRunner did before: discovery, then a session per call
        async with Client(fresh_params) as client:
            await client.list_tools()
        async with Client(fresh_params) as client:
            await client.call_tool("calculate", {"expression": "4 * 24"})

    kept, fresh = [], []
    for i in range(calls):
        started = time.perf_counter()
        result = persistent.call(ToolCall(name="calculate", arguments={"expression": "4 * 24"}))
        kept.append(time.perf_counter() - started)
        assert not result.is_error, result.content
        if i < max(3, calls // 10):  # a process per call costs seconds: fewer of them say enough
            started = time.perf_counter()
            anyio.run(per_call)
            fresh.append(time.perf_counter() - started)
    persistent.close()
    return {"persistent_session_ms": percentiles(kept), "process_per_call_ms": percentiles(fresh),
            "speedup_p50": round(statistics.median(fresh) / statistics.median(kept), 1),
            "calls": {"persistent": len(kept), "process_per_call": len(fresh)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--searches", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        subprocess.run(lantern_command(home, "ingest", str(ROOT / "kb")), check=True, capture_output=True, cwd=ROOT)
        report = {"stdio_search": anyio.run(round_trips, StdioServerParameters(command=sys.executable, args=lantern_command(home, "mcp")[1:],
                                                                               cwd=str(ROOT)), args.calls)}
        report["search_in_process"] = in_process_search(home, args.calls)
        for transport in ("stdio_search",):
            report[transport]["protocol_overhead_p50_ms"] = round(report[transport]["p50_ms"] - report["search_in_process"]["p50_ms"], 3)
        process, url = start_http(home)
        try:
            report["http_search"] = anyio.run(round_trips, url, args.calls)
            report["http_search"]["protocol_overhead_p50_ms"] = round(report["http_search"]["p50_ms"] - report["search_in_process"]["p50_ms"], 3)
            report["http_concurrency"] = anyio.run(concurrent_clients, url, args.clients, args.searches)
        finally:
            process.terminate()
            process.wait(timeout=10)
    report["client_tool_call"] = client_overhead(max(20, args.calls // 5))
    report["machine"] = f"{os.cpu_count()} CPU cores, no GPU"
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
