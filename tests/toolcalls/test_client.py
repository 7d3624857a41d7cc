"""MCPTools against real stdio MCP servers: one live session per server (restarted once when it
dies), per-call timeout and output cap, the trust rule, Claude-Desktop-style config files, and the
`lantern tools` commands."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lantern.records import ToolCall
from lantern.settings import load_settings
from lantern.toolcalls.client import MCPTools
from lantern.toolcalls.registry import configured_servers, read_config_file

ROOT = Path(__file__).resolve().parents[2]

SERVER = textwrap.dedent('''
    import os, time
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("probe")
    safe = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=safe)
    def pid() -> int:
        """This server's process id."""
        return os.getpid()

    @server.tool(annotations=safe)
    def big(n: int) -> str:
        """n characters."""
        return "x" * n

    @server.tool(annotations=safe)
    def slow(seconds: float) -> str:
        """Sleeps."""
        time.sleep(seconds)
        return "done"

    @server.tool()
    def unannotated() -> str:
        """Says nothing about what it touches."""
        return "ran"

    server.run()
''')


@pytest.fixture
def probe(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(SERVER)
    return {"command": sys.executable, "args": [str(script)]}


def call(tools, name, **arguments):
    return tools.call(ToolCall(name=name, arguments=arguments))


def test_one_session_per_server_restarted_once_when_it_dies(probe, tmp_path):
    tools = MCPTools({"probe": probe}, tmp_path / "logs")
    try:
        first = int(call(tools, "pid").content)
        assert int(call(tools, "pid").content) == first  # the same process serves every call
        os.kill(first, 9)
        second = int(call(tools, "pid").content)
        assert second != first  # restarted once
        os.kill(second, 9)
        gone = call(tools, "pid")
        assert gone.is_error and "not running" in gone.content
    finally:
        tools.close()


def test_timeout_output_cap_and_checks(probe, tmp_path):
    tools = MCPTools({"probe": probe}, tmp_path / "logs", call_timeout=1.0, max_output_chars=100)
    try:
        slow = call(tools, "slow", seconds=5)
        assert slow.is_error and "timed out after 1 s" in slow.content
        big = call(tools, "big", n=5000)
        assert not big.is_error and big.content.startswith("x" * 100) and "5,000 characters; the limit is 100" in big.content
        assert tools.check(ToolCall(name="nope")).startswith("unknown tool 'nope'")
        assert "n: 'many' is not of type 'integer'" in tools.check(ToolCall(name="big", arguments={"n": "many"}))
    finally:
        tools.close()


def test_a_tool_that_may_write_or_reach_the_network_needs_a_trusted_server(probe, tmp_path):
    tools = MCPTools({"probe": probe}, tmp_path / "logs")
    trusting = MCPTools({"probe": probe}, tmp_path / "logs", trusted_servers=["probe"])
    try:
        refused = call(tools, "unannotated")
        assert refused.is_error and "mcp_trusted_servers" in refused.content
        assert call(trusting, "unannotated").content == "ran"
    finally:
        tools.close()
        trusting.close()


def test_a_server_that_cannot_start_is_reported_with_its_stderr(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nprint('missing API key for the weather service', file=sys.stderr)\nsys.exit(1)\n")
    tools = MCPTools({"weather": {"command": sys.executable, "args": [str(broken)]}}, tmp_path / "logs")
    try:
        assert tools.list_tools() == []
        assert "missing API key" in tools.problems["weather"]
    finally:
        tools.close()


def test_claude_desktop_config_file_with_lantern_mcp_and_a_tools_server(tmp_path):
    """A Claude-Desktop-style file naming `lantern mcp` itself and one of Lantern's tool servers."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lamps.md").write_text("# Lamps\n\nA lantern is a portable light source.\n")
    home = tmp_path / "home"
    assert subprocess.run([sys.executable, "-m", "lantern", "--home", str(home), "ingest", str(docs)], cwd=ROOT,
                          capture_output=True).returncode == 0
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(json.dumps({"mcpServers": {
        "lantern": {"command": sys.executable, "args": ["-m", "lantern", "--home", str(home), "mcp"], "cwd": str(ROOT)},
        "units": {"command": sys.executable, "args": [str(ROOT / "tools" / "units.py")]},
    }}))
    settings = load_settings({"mcp_config_file": str(config), "builtin_tools": False})
    assert set(configured_servers(settings)) == {"lantern", "units"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "lantern", "--set", f"mcp_config_file={config}", *a],  # noqa: E731
                                    capture_output=True, text=True, cwd=ROOT)
    listed = run("tools", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {t["name"] for t in json.loads(listed.stdout)}
    assert {"lantern__search", "lantern__ask", "units__convert", "units__colour"} <= names
    found = run("tools", "call", "lantern__search", json.dumps({"query": "portable light", "k": 1}), "--json")
    assert found.returncode == 0 and "lamps.md" in found.stdout
    converted = run("tools", "call", "units__convert", json.dumps({"value": 100, "from_unit": "C", "to_unit": "F"}))
    assert converted.returncode == 0 and "212" in converted.stdout
    invalid = run("tools", "call", "units__convert", json.dumps({"value": "hot"}))
    assert invalid.returncode == 1 and invalid.stderr.startswith("error: invalid arguments for units__convert")


def test_a_broken_config_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    with pytest.raises(Exception, match="is not valid JSON"):
        read_config_file(bad)
    bad.write_text(json.dumps({"servers": {}}))
    with pytest.raises(Exception, match='no "mcpServers" object'):
        read_config_file(bad)
