"""`lantern mcp` against the official Python SDK client, over stdio and over streamable HTTP, as a
separate process exactly as an MCP host starts it."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

ROOT = Path(__file__).resolve().parents[2]
DOCS = {
    "ouro.md": "# Ouro\n\nOuro applies the same transformer layers four times for every token.\n\n"
    "## Early exit\n\nAn exit gate after each loop step gives the probability of stopping there.\n"
    "The model stops looping once the cumulative exit probability reaches the threshold.\n",
    "storage.md": "# Storage\n\nLantern keeps its knowledge base in LanceDB on local disk.\n",
}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    base = tmp_path_factory.mktemp("mcp")
    docs = base / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    done = subprocess.run([sys.executable, "-m", "lantern", "--home", str(base / "home"), "ingest", str(docs)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return base / "home", docs


def stdio(home, *flags):
    return StdioServerParameters(command=sys.executable, args=["-m", "lantern", "--home", str(home), *flags, "mcp"], cwd=str(ROOT))


def run(coro):
    return anyio.run(coro)


def test_stdio_tools_have_typed_schemas_and_structured_results(home):
    home, docs = home

    async def main():
        async with Client(stdio(home)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == {"search", "ask", "get_passage", "list_sources"}  # no ingest unless allowed
            assert tools["search"].input_schema["required"] == ["query"] and tools["search"].output_schema
            assert tools["ask"].output_schema["properties"]["claims"] and tools["ask"].annotations.read_only_hint

            found = await client.call_tool("search", {"query": "exit gate probability", "k": 2})
            passages = found.structured_content["passages"]
            assert not found.is_error and len(passages) == 2 and passages[0]["source"].endswith("ouro.md")
            assert {"source", "start_line", "end_line", "score", "text"} <= set(passages[0])

            answer = await client.call_tool("ask", {"question": "Where does Lantern keep its knowledge base?"})
            data = answer.structured_content
            assert data["status"] == "answered" and data["claims"] and data["model"] == "extractive"
            claim = data["claims"][0]
            assert {"claim", "evidence", "confidence", "verdict", "source", "start_line", "end_line"} <= set(claim)

            # A client can check the citation itself.
            quoted = await client.call_tool("get_passage", {"source": claim["source"], "start_line": claim["start_line"],
                                                            "end_line": claim["end_line"]})
            assert claim["evidence"] in quoted.structured_content["text"]

            listed = (await client.call_tool("list_sources", {})).structured_content["sources"]
            assert sorted(Path(s["path"]).name for s in listed) == ["ouro.md", "storage.md"] and all(s["chunks"] for s in listed)

    run(main)


def test_stdio_bad_arguments_and_unknown_files_are_errors_naming_what_is_wrong(home):
    home, docs = home

    async def main():
        async with Client(stdio(home)) as client:
            bad = await client.call_tool("search", {"query": "gate", "k": 0})
            assert bad.is_error and "k" in bad.content[0].text
            missing = await client.call_tool("search", {})
            assert missing.is_error and "query" in missing.content[0].text
            outside = await client.call_tool("get_passage", {"source": "/etc/passwd", "start_line": 1, "end_line": 2})
            assert outside.is_error and "not in the knowledge base" in outside.content[0].text
            beyond = await client.call_tool("get_passage", {"source": str(docs.resolve() / "storage.md"), "start_line": 1, "end_line": 99})
            assert beyond.is_error and "outside" in beyond.content[0].text

    run(main)


def test_stdio_resources_are_the_ingested_files(home):
    home, docs = home

    async def main():
        async with Client(stdio(home)) as client:
            resources = (await client.list_resources()).resources
            uris = sorted(str(r.uri) for r in resources)
            assert len(uris) == 2 and all(u.startswith("lantern://kb/") for u in uris)
            text = (await client.read_resource(uris[1])).contents[0].text
            assert text == DOCS["storage.md"]
            templates = (await client.list_resource_templates()).resource_templates
            assert templates[0].uri_template == "lantern://kb/{+path}"

    run(main)


def test_ask_reports_progress_per_stage(home):
    home, _ = home
    seen = []

    async def progress(value, total, message):
        seen.append(message)

    async def main():
        async with Client(stdio(home)) as client:
            result = await client.call_tool("ask", {"question": "How does Ouro decide when to stop looping?"}, progress_callback=progress)
            assert not result.is_error

    run(main)
    assert seen[:2] == ["observe", "remember"] and "verify" in seen and "converge" in seen


def test_client_cancellation_stops_the_answer(home, tmp_path):
    """The client gives up on a long answer (its cancel scope sends notifications/cancelled); the
    server stops generating within a token, and says so in its log."""
    from lantern.runtime.testing import make_random_checkpoint

    home, _ = home
    checkpoint = make_random_checkpoint(tmp_path / "ouro", "tiny", seed=1)
    flags = ["--set", f"model={checkpoint}", "--set", "dtype=float32", "--set", "max_new_tokens=100000", "--set", "mode=fast",
             "--set", "log_level=INFO"]
    log = home / "logs" / "lantern.log"
    before = log.read_text() if log.exists() else ""

    async def main():
        async with Client(stdio(home, *flags)) as client:
            with anyio.move_on_after(4):
                await client.call_tool("ask", {"question": "How does Ouro decide when to stop looping?"})
            # The server is still there and answers the next request.
            assert not (await client.call_tool("search", {"query": "gate", "k": 1})).is_error
            for _ in range(100):
                if log.exists() and "answer cancelled" in log.read_text()[len(before):]:
                    break
                await anyio.sleep(0.1)

    run(main)
    assert "answer cancelled" in log.read_text()[len(before):]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_http(home, port, env=None):
    process = subprocess.Popen([sys.executable, "-m", "lantern", "--home", str(home), "mcp", "--http", "--port", str(port)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode())
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the HTTP server did not start")


def test_http_serves_the_same_tools_and_refuses_foreign_origins(home):
    home, _ = home
    port = free_port()
    process = serve_http(home, port)
    try:
        async def main():
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                found = await client.call_tool("search", {"query": "LanceDB local disk", "k": 1})
                assert found.structured_content["passages"][0]["source"].endswith("storage.md")

        run(main)
        hello = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        refused = httpx.post(f"http://127.0.0.1:{port}/mcp", json=hello, headers=headers | {"Origin": "http://evil.example"})
        assert refused.status_code == 403 and "Origin" in refused.text
        rebound = httpx.post(f"http://127.0.0.1:{port}/mcp", json=hello, headers=headers | {"Host": "evil.example"})
        assert rebound.status_code == 421
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_http_bearer_token(home):


    home, _ = home
    port = free_port()
    process = serve_http(home, port, env=os.environ | {"LANTERN_MCP_TOKEN": "s3cret"})
    try:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        hello = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        missing = httpx.post(f"http://127.0.0.1:{port}/mcp", json=hello, headers=headers)
        wrong = httpx.post(f"http://127.0.0.1:{port}/mcp", json=hello, headers=headers | {"Authorization": "Bearer nope"})
        assert missing.status_code == 401 and missing.text.startswith("missing bearer token") and missing.text.count("\n") == 1
        assert wrong.status_code == 401 and wrong.text.startswith("wrong bearer token")

        async def main():
            from mcp.client.streamable_http import streamable_http_client

            async with httpx.AsyncClient(headers={"Authorization": "Bearer s3cret"}) as http:
                async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client:
                    assert "search" in {t.name for t in (await client.list_tools()).tools}

        run(main)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_print_config_is_the_snippet_an_mcp_host_needs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lantern", "--home", str(tmp_path), "mcp", "--print-config"], capture_output=True,
                          text=True, cwd=ROOT)
    entry = json.loads(done.stdout)["mcpServers"]["lantern"]
    assert entry["args"] == ["mcp"] and Path(entry["command"]).name == "lantern" and entry["env"] == {"LANTERN_HOME": str(tmp_path)}


def test_ingest_tool_only_when_allowed_and_only_under_the_roots(home, tmp_path):
    _, docs = home
    home = tmp_path / "home"
    assert subprocess.run([sys.executable, "-m", "lantern", "--home", str(home), "ingest", str(docs)], cwd=ROOT).returncode == 0
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "new.md").write_text("# New\n\nThe lighthouse keeper logs every ship that passes.\n")
    (tmp_path / "secret.md").write_text("# Secret\n\nNot for the knowledge base.\n")
    flags = ["--set", "mcp_allow_ingest=true", "--set", f"mcp_ingest_roots={json.dumps([str(allowed)])}"]

    async def main():
        async with Client(stdio(home, *flags)) as client:
            assert "ingest" in {t.name for t in (await client.list_tools()).tools}
            outside = await client.call_tool("ingest", {"paths": [str(allowed / ".." / "secret.md")]})
            assert outside.is_error and "outside the folders" in outside.content[0].text
            added = await client.call_tool("ingest", {"paths": [str(allowed)]})
            assert added.structured_content["added"] == 1
            uris = [str(r.uri) for r in (await client.list_resources()).resources]
            assert any(u.endswith("allowed/new.md") for u in uris)

    run(main)


def test_warm_searches_equal_lancedb_and_see_another_processes_ingest(home, tmp_path):
    """The server answers warm searches from its in-memory copy of the chunks table: the same
    passages as LanceDB's search in this process, and a `lantern ingest` by another process is in
    the very next search."""
    from lantern.knowledge import KnowledgeBase
    from lantern.settings import load_settings

    _, docs = home
    home = tmp_path / "home"
    assert subprocess.run([sys.executable, "-m", "lantern", "--home", str(home), "ingest", str(docs)], cwd=ROOT).returncode == 0
    reference = KnowledgeBase.open(load_settings({"home": str(home)}))
    more = tmp_path / "more"
    more.mkdir()
    (more / "light.md").write_text("# Lighthouse\n\nThe lighthouse keeper logs every ship that passes.\n")

    async def main():
        async with Client(stdio(home)) as client:
            for query in ("exit gate probability", "exit gate probability", "LanceDB local disk", "how many loops per token"):
                for mode in ("hybrid", "vector", "text"):
                    served = (await client.call_tool("search", {"query": query, "k": 3, "mode": mode})).structured_content
                    expected = reference.search(query, 3, mode)
                    assert [(p["source"], p["start_line"], p["score"]) for p in served["passages"]] == [
                        (h.source, h.start_line, pytest.approx(h.score, abs=1e-6)) for h in expected]
            before = (await client.call_tool("search", {"query": "lighthouse keeper", "k": 1})).structured_content
            assert not before["passages"][0]["source"].endswith("light.md")
            done = await anyio.to_thread.run_sync(lambda: subprocess.run(
                [sys.executable, "-m", "lantern", "--home", str(home), "ingest", str(more)], cwd=ROOT, capture_output=True, text=True))
            assert done.returncode == 0, done.stdout + done.stderr
            after = (await client.call_tool("search", {"query": "lighthouse keeper", "k": 1})).structured_content
            assert after["passages"][0]["source"].endswith("light.md")

    run(main)
