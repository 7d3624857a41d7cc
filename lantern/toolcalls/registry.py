"""Which MCP servers an answer may use: Lantern's own, a Claude-Desktop-style JSON file, config.toml.

Three sources, later ones overriding earlier ones by server name:
1. Lantern's own tool servers in the repository's `tools/` folder (calculator, units, dates; files
   when `file_roots` names folders), on unless `builtin_tools` is off. They are started with this
   Python, like any other stdio server.
2. `mcp_config_file`: a JSON file in Claude Desktop's shape, `{"mcpServers": {NAME: {command, args,
   env, cwd} | {url}}}`, so users reuse the file they already have.
3. `mcp_servers` in config.toml (`[mcp_servers.NAME]`), the same shape.

Trust: a tool whose MCP annotations do not say it is read-only and closed-world (no writes, no
network) may only run when its server is listed in `mcp_trusted_servers`; by the MCP spec a tool
without annotations is assumed to write and reach the network. Lantern's own servers declare
themselves read-only and closed-world.

This module knows nothing about sessions or answers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lantern.errors import LanternError

TOOLS_DIR = Path(__file__).resolve().parents[2] / "tools"
BUILTIN = ("calculator", "units", "dates")


def builtin_servers(file_roots: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Lantern's own servers that exist in this install (an editable install has the tools/ folder)."""
    servers = {name: {"command": sys.executable, "args": [str(TOOLS_DIR / f"{name}.py")]}
               for name in BUILTIN if (TOOLS_DIR / f"{name}.py").exists()}
    if file_roots and (TOOLS_DIR / "files.py").exists():
        servers["files"] = {"command": sys.executable,
                            "args": [str(TOOLS_DIR / "files.py")] + [a for root in file_roots for a in ("--root", str(Path(root).expanduser()))]}
    return servers


def read_config_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """The `mcpServers` of a Claude-Desktop-style JSON file, checked enough to give one-line errors."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LanternError(f"mcp_config_file {path} cannot be read ({exc.strerror}); fix the path or unset mcp_config_file.") from exc
    except json.JSONDecodeError as exc:
        raise LanternError(f"mcp_config_file {path} is not valid JSON (line {exc.lineno}: {exc.msg}); fix it or unset mcp_config_file.") from exc
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise LanternError(f'mcp_config_file {path} has no "mcpServers" object; it should look like Claude Desktop\'s config.')
    for name, spec in servers.items():
        if not isinstance(spec, dict) or not ("command" in spec or "url" in spec):
            raise LanternError(f"mcp_config_file {path}: server {name!r} needs a command (stdio) or a url (HTTP).")
    return servers


def configured_servers(settings) -> dict[str, dict[str, Any]]:
    """Every server an answer may use, by name (see the module docstring for the order)."""
    servers = builtin_servers(settings.file_roots) if settings.builtin_tools else {}
    if settings.mcp_config_file:
        servers |= read_config_file(settings.mcp_config_file)
    return servers | dict(settings.mcp_servers)


def trusted(annotations, server: str, trusted_servers: list[str]) -> str | None:
    """None when a tool may run; else why not and what to set."""
    if server in trusted_servers:
        return None
    read_only = getattr(annotations, "read_only_hint", None) is True
    closed = getattr(annotations, "open_world_hint", None) is False
    if read_only and closed:
        return None
    return (f"server {server} does not declare this tool read-only and closed-world (it may write files or reach the network); "
            f"to allow it, add {server!r} to mcp_trusted_servers in config.toml")
