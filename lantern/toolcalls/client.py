"""MCP client side: one live session per configured server, for the life of the process.

`MCPTools(servers)` starts nothing until a tool list or a call is asked for; then each server is
started once (stdio command or streamable-HTTP url), its tools discovered once, and its session
kept open. A session that dies is restarted once. All of it runs on one private asyncio loop in
a daemon thread, so the blocking methods here work from any thread, including a thread whose own
asyncio loop is running (the MCP server, the TUI): nothing calls `anyio.run` in the caller's
thread. A stdio server's stderr goes to LANTERN_HOME/logs/mcp-NAME.log (never to Lantern's own
stdout), and its last lines are quoted when it fails to start.

Calls are validated (unknown tool, arguments against the inputSchema) before they run; a result
longer than `max_output_chars` is cut with a note; a call that takes longer than
`call_timeout` seconds is an error result. Nothing here raises for a broken server: failures are
results with `is_error`, and `problems` lists servers that could not start.

This module knows nothing about answers or claims.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lantern.records import ToolCall, ToolResult
from lantern.toolcalls.registry import trusted
from lantern.toolcalls.validate import check_call, validation_error

log = logging.getLogger(__name__)
START_TIMEOUT = 30.0


@dataclass
class Tool:
    """One tool as the model sees it: its public name (namespaced `server__tool` when several
    servers are configured) and where it lives."""

    name: str
    server: str
    remote_name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    annotations: Any = None

    def listing(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}


@dataclass
class _Session:
    client: Any = None
    tools: list[Any] = field(default_factory=list)
    stop: asyncio.Event | None = None
    task: asyncio.Task | None = None
    restarts: int = 0


class MCPTools:
    """The tools of the configured MCP servers, behind blocking `list_tools()` and `call()`."""

    def __init__(self, servers: dict[str, dict[str, Any]], logs: Path | None = None, call_timeout: float = 30.0,
                 max_output_chars: int = 20_000, trusted_servers: list[str] | None = None) -> None:
        self.servers = servers
        self.trusted_servers = list(trusted_servers or [])
        self.logs = logs
        self.call_timeout = call_timeout
        self.max_output_chars = max_output_chars
        self.problems: dict[str, str] = {}
        """Servers that could not be started, with the reason (and their stderr's last line)."""
        self._sessions: dict[str, _Session] = {}
        self._tools: dict[str, Tool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    # --- the private event loop ------------------------------------------------------------------
    def _run(self, coro, timeout: float | None):
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="lantern-mcp", daemon=True).start()
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout:g} s") from None

    def close(self) -> None:
        """End every session (their server processes exit) and stop the loop."""
        if self._loop is None:
            return

        async def stop_all():
            for session in self._sessions.values():
                if session.stop is not None:
                    session.stop.set()
            tasks = [s.task for s in self._sessions.values() if s.task is not None]
            if tasks:
                await asyncio.wait(tasks, timeout=5)

        try:
            self._run(stop_all(), 10)
        except Exception:  # closing is best effort
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop = None
        self._sessions.clear()

    # --- sessions ---------------------------------------------------------------------------------
    def _transport(self, name: str):
        spec = self.servers[name]
        if "url" in spec:
            return spec["url"]
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(command=spec["command"], args=[str(a) for a in spec.get("args", [])],
                                       env=spec.get("env"), cwd=spec.get("cwd"))
        return stdio_client(params, errlog=self._errlog(name))

    def _errlog(self, name: str):
        if self.logs is None:
            import os

            return open(os.devnull, "w")  # noqa: SIM115 (the session owns it)
        self.logs.mkdir(parents=True, exist_ok=True)
        return (self.logs / f"mcp-{name}.log").open("a", encoding="utf-8")

    def stderr_tail(self, name: str, lines: int = 3) -> str:
        if self.logs is None or not (self.logs / f"mcp-{name}.log").exists():
            return ""
        text = (self.logs / f"mcp-{name}.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])

    async def _open(self, name: str) -> _Session:
        from mcp import Client

        session = self._sessions.get(name) or _Session()
        self._sessions[name] = session
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        session.stop = asyncio.Event()

        async def keep() -> None:
            try:
                async with Client(self._transport(name)) as client:
                    tools = (await client.list_tools()).tools
                    session.client, session.tools = client, tools
                    ready.set_result(session)
                    await session.stop.wait()
            except BaseException as exc:  # noqa: BLE001 (reported to whoever waits, then the session is gone)
                if not ready.done():
                    ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            finally:
                session.client = None

        session.task = asyncio.ensure_future(keep())
        return await asyncio.wait_for(ready, START_TIMEOUT)

    async def _open_or_report(self, name: str) -> _Session | None:
        try:
            return await self._open(name)
        except Exception as exc:
            await asyncio.sleep(0.2)  # let a dying server's last stderr lines reach its log
            tail = self.stderr_tail(name)
            reason = _reason(exc) + (f"; its stderr: {tail}" if tail else "")
            self.problems[name] = reason
            log.warning("MCP server %s did not start: %s", name, reason)
            return None

    def _start(self, name: str) -> _Session | None:
        return self._run(self._open_or_report(name), START_TIMEOUT + 5)

    def _start_all(self) -> dict[str, _Session | None]:
        """Start every server at once (each is a process that takes a second to import its SDK)."""
        async def all_of():
            sessions = await asyncio.gather(*(self._open_or_report(name) for name in self.servers))
            return dict(zip(self.servers, sessions))

        return self._run(all_of(), START_TIMEOUT + 5)

    def _end(self, session: _Session) -> None:
        """End a session whose server died (its keeper task exits and its process is reaped)."""
        session.client = None
        if session.stop is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(session.stop.set)

    # --- public -----------------------------------------------------------------------------------
    def tools(self) -> dict[str, Tool]:
        """Every tool of every server that starts, discovered once."""
        if self._tools is None:
            found: dict[str, Tool] = {}
            for server, session in self._start_all().items():
                for tool in session.tools if session else []:
                    public = tool.name if len(self.servers) == 1 else f"{server}__{tool.name}"
                    found[public] = Tool(public, server, tool.name, tool.description or "", tool.input_schema or {"type": "object"},
                                         getattr(tool, "output_schema", None), getattr(tool, "annotations", None))
            self._tools = found
        return self._tools

    def list_tools(self) -> list[dict[str, Any]]:
        return [tool.listing() for tool in self.tools().values()]

    def check(self, call: ToolCall) -> str | None:
        """Why `call` must not run (unknown tool, arguments against the schema), or None."""
        tools = self.tools()
        problem = check_call(call, {name: tool.input_schema for name, tool in tools.items()})
        if problem is None:
            refusal = trusted(tools[call.name].annotations, tools[call.name].server, self.trusted_servers)
            if refusal:
                return f"tool {call.name} refused: {refusal}"
        return problem

    def call(self, call: ToolCall) -> ToolResult:
        """Run a call that passed `check` (checked again here) on its server's live session."""
        problem = self.check(call)
        if problem:
            return ToolResult(call=call, content=problem, is_error=True)
        tool = self.tools()[call.name]
        while True:  # ends: a server is restarted at most once
            session = self._sessions.get(tool.server)
            if session is None or session.client is None:
                if session is None or session.restarts >= 1:
                    return ToolResult(call=call, content=f"tool {call.name} failed: its server {tool.server} is not running", is_error=True)
                session.restarts += 1  # restarted once if it dies; a server that keeps dying stays down
                if self._start(tool.server) is None:
                    return ToolResult(call=call, content=f"tool {call.name} failed: server {tool.server} did not start ({self.problems.get(tool.server)})", is_error=True)
                continue
            try:
                result = self._run(session.client.call_tool(tool.remote_name, call.arguments), self.call_timeout)
                break
            except TimeoutError:
                return ToolResult(call=call, content=f"tool {call.name} timed out after {self.call_timeout:g} s", is_error=True)
            except Exception as exc:
                if not _connection_lost(exc):  # the session is alive: the call itself failed
                    return ToolResult(call=call, content=f"tool {call.name} failed: {_reason(exc)}", is_error=True)
                self._end(session)  # the server died: end its session; the loop starts it again (once)
        text = "\n".join(getattr(block, "text", "") for block in result.content).strip()
        structured = result.structured_content
        if not result.is_error and structured is not None and tool.output_schema:
            problem = validation_error(structured, tool.output_schema)
            if problem:
                return ToolResult(call=call, content=f"tool {call.name} returned a result that breaks its own output schema: {problem}", is_error=True)
        content = text or (json.dumps(structured, ensure_ascii=False) if structured is not None else "")
        if len(content) > self.max_output_chars:
            content = content[: self.max_output_chars] + f"\n[cut: the result had {len(content):,} characters; the limit is {self.max_output_chars:,}]"
        return ToolResult(call=call, content=content, is_error=bool(result.is_error), structured=structured)


def _connection_lost(exc: BaseException) -> bool:
    import anyio

    lost = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, BrokenPipeError, ConnectionError)
    return isinstance(exc, lost) or "connection closed" in str(exc).lower()


def _reason(exc: BaseException) -> str:
    """The innermost useful message of an exception (task groups wrap the real one)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


_shared: dict[str, MCPTools] = {}
_shared_lock = threading.Lock()


def shared_tools(settings) -> MCPTools | None:
    """The tools of every server `settings` configures (None when there are none), one MCPTools per
    distinct configuration per process: a chat or a server answering many questions keeps its
    sessions instead of starting each server again."""
    from lantern.toolcalls.registry import configured_servers

    servers = configured_servers(settings)
    if not servers:
        return None
    options = dict(logs=settings.logs_path, call_timeout=settings.tool_timeout, max_output_chars=settings.tool_max_output,
                   trusted_servers=settings.mcp_trusted_servers)
    key = json.dumps([servers, options], sort_keys=True, default=str)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = MCPTools(servers, **options)
        return _shared[key]
