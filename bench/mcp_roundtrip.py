"""MCP benchmark: `lantern mcp` round trips (stdio, HTTP), 50 concurrent HTTP clients, and the
client's persistent sessions against a process per call.

Ingests the shipped kb/ into a temporary LANTERN_HOME, then, in one run on one machine:
1. Server round trip: `lantern mcp` started as MCP hosts start it (a separate process), the
   official Python SDK client calls `search` with one query over and over, over stdio and over
   streamable HTTP; after warm-up the query's embedding is cached, so p50/p95 exclude it. The
   same search is run in this process too, as the server runs it (from the in-memory copy of the
   chunks table) and as one-shot commands run it (LanceDB's own searches, the reference). The four
   are measured interleaved, call by call, so the machine's load shifts them alike; what MCP adds
   is the round trip minus the in-process search.
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


async def round_trips(home: str, stdio, url: str, calls: int) -> dict[str, dict[str, float]]:
    """p50/p95 of `search` over stdio and over HTTP and of the same search in this process (in memory,
    as the server runs it, and through LanceDB), measured interleaved."""
    from lantern.knowledge import KnowledgeBase
    from lantern.settings import load_settings

    in_memory = KnowledgeBase.open(load_settings({"home": home}))
    in_memory.keep_in_memory()
    lancedb = KnowledgeBase.open(load_settings({"home": home}))
    arguments = {"query": "exit gate", "k": 5}
    async with Client(stdio) as over_stdio, Client(url) as over_http:
        async def search_stdio():
            assert not (await over_stdio.call_tool("search", arguments)).is_error

        async def search_http():
            assert not (await over_http.call_tool("search", arguments)).is_error

        async def search_in_memory():
            in_memory.search("exit gate", 5, "hybrid")

        async def search_lancedb():
            lancedb.search("exit gate", 5, "hybrid")

        measured = {"stdio_search": search_stdio, "http_search": search_http, "search_in_process": search_in_memory,
                    "search_in_process_lancedb": search_lancedb}
        for _ in range(10):  # warm-up: the embedder loads, the query's vector is cached, the index is read
            for call in measured.values():
                await call()
        seconds: dict[str, list[float]] = {name: [] for name in measured}
        for _ in range(calls):
            for name, call in measured.items():
                started = time.perf_counter()
                await call()
                seconds[name].append(time.perf_counter() - started)
    report = {name: percentiles(values) for name, values in seconds.items()}
    for transport in ("stdio_search", "http_search"):
        report[transport]["protocol_overhead_p50_ms"] = round(report[transport]["p50_ms"] - report["search_in_process"]["p50_ms"], 3)
    report["search_in_process_lancedb"]["over_in_memory_p50"] = round(
        report["search_in_process_lancedb"]["p50_ms"] / report["search_in_process"]["p50_ms"], 1)
    return report


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
        stdio = StdioServerParameters(command=sys.executable, args=lantern_command(home, "mcp")[1:], cwd=str(ROOT))
        process, url = start_http(home)
        try:
            report = anyio.run(round_trips, home, stdio, url, args.calls)
            report["http_concurrency"] = anyio.run(concurrent_clients, url, args.clients, args.searches)
        finally:
            process.terminate()
            process.wait(timeout=10)
    report["client_tool_call"] = client_overhead(max(20, args.calls // 5))
    report["machine"] = f"{os.cpu_count()} CPU cores, no GPU"
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
