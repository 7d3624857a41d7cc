"""Act: tool calls the reasoner asked for -> validated MCP calls -> results that become evidence.

The reasoner requests a tool with one line `CALL_TOOL <name> <JSON arguments>` (prefix from
prompts/answer.toml). Requests are parsed leniently (code fences, single quotes), then validated
against the tool's JSON Schema before anything runs: an unknown tool or bad arguments produce an
error result the reasoner sees, never a crash. Tools come from the MCP servers configured in the
`mcp_servers` setting (stdio `{command, args, env}` or `{url}`); names are namespaced
`server__tool` when several servers are configured.

This module knows nothing about claims or verification.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from lantern.records import Evidence, ToolCall, ToolResult


class ToolRunner(Protocol):
    def list_tools(self) -> list[dict[str, Any]]: ...
    def call(self, call: ToolCall) -> ToolResult: ...


def parse_tool_calls(text: str, prefix: str = "CALL_TOOL") -> tuple[list[ToolCall], list[str]]:
    """(calls, problems): every `PREFIX name {json}` line of `text`, leniently parsed."""
    calls: list[ToolCall] = []
    problems: list[str] = []
    for match in re.finditer(rf"{re.escape(prefix)}\s*:?\s*`*([A-Za-z0-9_.\-]+)`*\s*(.*)", text):
        name, raw = match.group(1), match.group(2).strip().strip("`").strip()
        if not raw:
            calls.append(ToolCall(name=name))
            continue
        arguments = _lenient_json(raw)
        if isinstance(arguments, dict):
            calls.append(ToolCall(name=name, arguments=arguments))
        else:
            problems.append(f"{name}: arguments are not a JSON object ({raw[:60]})")
    return calls, problems


def _lenient_json(raw: str) -> Any:
    end = raw.rfind("}")
    candidate = raw[: end + 1] if end >= 0 else raw
    for attempt in (candidate, candidate.replace("'", '"')):
        try:
            return json.loads(attempt)
        except json.JSONDecodeError:
            continue
    return None


def validation_error(arguments: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """One line saying why `arguments` break `schema`, or None when they conform."""
    import jsonschema

    try:
        jsonschema.validate(arguments, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
        return f"{where}: {exc.message}"
    except jsonschema.SchemaError as exc:
        return f"the tool's own schema is invalid ({exc.message})"
    return None


class MCPToolRunner:
    """Calls tools of the configured MCP servers (a fresh client session per request)."""

    def __init__(self, servers: dict[str, dict[str, Any]]) -> None:
        self.servers = servers
        self._tools: dict[str, tuple[str, Any]] | None = None  # public name -> (server, tool)

    def _target(self, server: str):
        spec = self.servers[server]
        if "url" in spec:
            return spec["url"]
        from mcp.client.stdio import StdioServerParameters

        return StdioServerParameters(command=spec["command"], args=list(spec.get("args", [])), env=spec.get("env"), cwd=spec.get("cwd"))

    def _discover(self) -> dict[str, tuple[str, Any]]:
        if self._tools is None:
            import anyio
            from mcp import Client

            found: dict[str, tuple[str, Any]] = {}

            async def collect(server: str) -> None:
                async with Client(self._target(server)) as client:
                    for tool in (await client.list_tools()).tools:
                        name = tool.name if len(self.servers) == 1 else f"{server}__{tool.name}"
                        found[name] = (server, tool)

            for server in self.servers:
                try:
                    anyio.run(collect, server)
                except Exception as exc:  # a broken server must not take the answer down
                    import logging

                    logging.getLogger(__name__).warning("MCP server %s unavailable: %s", server, exc)
            self._tools = found
        return self._tools

    def list_tools(self) -> list[dict[str, Any]]:
        return [{"name": name, "description": tool.description or "", "input_schema": tool.input_schema} for name, (_, tool) in self._discover().items()]

    def call(self, call: ToolCall) -> ToolResult:
        tools = self._discover()
        if call.name not in tools:
            known = ", ".join(sorted(tools)) or "none"
            return ToolResult(call=call, content=f"unknown tool {call.name!r}; available: {known}", is_error=True)
        server, tool = tools[call.name]
        problem = validation_error(call.arguments, tool.input_schema or {"type": "object"})
        if problem:
            return ToolResult(call=call, content=f"invalid arguments for {call.name}: {problem}", is_error=True)
        import anyio
        from mcp import Client

        async def run():
            async with Client(self._target(server)) as client:
                return await client.call_tool(tool.name, call.arguments)

        try:
            result = anyio.run(run)
        except Exception as exc:
            return ToolResult(call=call, content=f"tool {call.name} failed: {exc}", is_error=True)
        text = "\n".join(getattr(block, "text", "") for block in result.content).strip()
        return ToolResult(call=call, content=text or json.dumps(result.structured_content), is_error=bool(result.is_error), structured=result.structured_content)


def as_evidence(result: ToolResult, index: int) -> Evidence:
    """A successful tool result as an evidence passage the claims can cite and the verifier check."""
    arguments = json.dumps(result.call.arguments, ensure_ascii=False)
    text = f"{result.call.name}({arguments}) returned: {result.content}"
    return Evidence(chunk_id=f"tool-{index}", source=f"tool:{result.call.name}", text=text, start_line=1, end_line=1, heading="tool result", score=1.0)
