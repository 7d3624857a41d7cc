"""Lantern's doors for other programs: `mcp_server` (MCP over stdio and streamable HTTP) and
`http_api` (Ollama- and OpenAI-compatible HTTP, with `requests` and `batcher`).

Each renders the answer loop's events (`lantern.loop.events`); none re-implements a stage.
"""


def token_from_env(variable: str | None) -> str | None:
    """The bearer token a server requires: the value of the environment variable a setting names
    (`mcp_token_env`, `serve_token_env`), or None when it is unset or empty (no token required)."""
    import os

    return (os.environ.get(variable) or None) if variable else None
