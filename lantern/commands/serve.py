"""`lantern mcp` (Lantern as an MCP server) and `lantern serve` (Ollama- and OpenAI-compatible HTTP API)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import typer

from lantern.commands import common


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel="Serve")
    def mcp(
        http: bool = typer.Option(False, "--http", help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind with --http (127.0.0.1: this machine only)."),
        port: int = typer.Option(8765, "--port", help="Port for --http."),
        print_config: bool = typer.Option(False, "--print-config", help="Print the mcpServers entry for Claude Desktop and other hosts, then exit."),
    ) -> None:
        """Run Lantern as an MCP server: tools search, ask, get_passage, list_sources (and ingest when allowed), and
        every ingested file as a lantern://kb/ resource.

        Example: `lantern mcp --print-config` for Claude Desktop's config; `lantern mcp --http --port 8765`, with
        the bearer token in LANTERN_MCP_TOKEN when set.
        """
        from lantern.serve import token_from_env
        from lantern.serve.mcp_server import LanternMCP, client_config

        settings = common.settings()
        if print_config:
            beside = Path(sys.executable).with_name("lantern")  # this install's own script, e.g. .venv/bin/lantern
            executable = str(beside.absolute()) if beside.exists() else (shutil.which("lantern") or "lantern")
            home = str(settings.home) if "home" in common.GLOBAL_FLAGS else None
            print(json.dumps(client_config(executable, home), indent=2))
            return

        server = LanternMCP(settings)
        if not http:
            server.run_stdio()
            return
        import uvicorn

        token = token_from_env(settings.mcp_token_env)
        common.notice(f"lantern mcp: streamable HTTP at http://{host}:{port}/mcp" + (" (bearer token required)" if token else ""))
        uvicorn.run(server.http_app(host, token), host=host, port=port, log_level="warning")

    @app.command(rich_help_panel="Serve")
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (127.0.0.1: this machine only)."),
        port: int = typer.Option(11434, "--port", help="Port (11434 is Ollama's, so Ollama clients find it)."),
        model: str = typer.Option(None, "--model", help="The Ouro model to serve: a short name, HF id or snapshot folder."),
        mode: str = typer.Option(None, "--mode", help="Default mode for requests that do not choose: deep or fast."),
        quant: str = typer.Option(None, "--quant", help="Weights: none, int8 or int4 (smaller and faster on CPU, at an accuracy cost; default: the quant setting)."),
    ) -> None:
        """Serve the native LoopLM over Ollama- and OpenAI-compatible HTTP endpoints, and grounded answers under the
        model name `lantern` (the grounded_model setting).

        Example: `lantern serve --model ouro-1.4b`, then `curl localhost:11434/api/generate -d '{"model": "ouro-1.4b", "prompt": "Hi"}'`
        or any OpenAI client with base_url http://127.0.0.1:11434/v1 and model "lantern".
        """
        from lantern.backends.ouro import loaded
        from lantern.knowledge import KnowledgeBase
        from lantern.runtime.locate import require
        from lantern.serve import token_from_env
        from lantern.serve.http_api import LanternAPI

        settings = common.settings(model=model, mode=mode, quant=quant).model_copy(update={"backend": "ouro"})
        if settings.quant != "none":
            from lantern.runtime.quantize import ACCURACY_NOTICE

            common.notice(f"note: {ACCURACY_NOTICE[settings.quant]}")
        lm = loaded(str(require(settings.model)), settings.device, settings.dtype, settings.quant, settings.threads)  # fails here, not at the first request
        api = LanternAPI(lm, settings, token_from_env(settings.serve_token_env), KnowledgeBase.open(settings))
        import uvicorn

        common.notice(f"lantern serve: {api.name} and {api.grounded} at http://{host}:{port} (Ollama /api, OpenAI /v1)"
                      + (" (bearer token required)" if api.token else ""))
        uvicorn.run(api.app(), host=host, port=port, log_level="warning")
