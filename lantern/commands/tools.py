"""`lantern tools list|call`: the MCP tools an answer may use, tried by hand (validated as the loop validates them)."""

from __future__ import annotations

import json

import typer

from lantern.commands import common

tools_app = typer.Typer(help="The MCP tools Lantern may call: list them, or call one by hand.", no_args_is_help=True)


def _tools():
    from lantern.errors import LanternError
    from lantern.toolcalls.client import shared_tools

    tools = shared_tools(common.settings())
    if tools is None:
        raise LanternError("no MCP servers are configured; add [mcp_servers.NAME] to config.toml, set mcp_config_file, or turn builtin_tools on.")
    return tools


@tools_app.command("list")
def list_tools(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Start every configured server and list its tools with their argument schemas.

    Example: `lantern tools list`
    """
    tools = _tools()
    listed = tools.tools()
    for server, problem in sorted(tools.problems.items()):
        common.error(f"MCP server {server} did not start: {problem}")
    if as_json:
        common.print_json([{"name": t.name, "server": t.server, "description": t.description, "input_schema": t.input_schema}
                           for t in listed.values()])
        return
    for tool in listed.values():
        arguments = ", ".join(f"{k}" + ("" if k in tool.input_schema.get("required", []) else "?")
                              for k in tool.input_schema.get("properties", {}))
        print(f"{tool.name}({arguments})  [{tool.server}]  {' '.join(tool.description.split())[:100]}")
    if tools.problems:
        raise typer.Exit(1)


@tools_app.command("call")
def call_tool(
    name: str = typer.Argument(..., help="Tool name as `lantern tools list` shows it."),
    arguments: str = typer.Argument("{}", help="The arguments as a JSON object."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Call one tool by hand, checked against its schema first exactly as a model's call is.

    Example: `lantern tools call calculator__calculate '{"expression": "17.5 / 100 * 2340"}'`
    """
    from lantern.errors import ToolCallError
    from lantern.records import ToolCall
    from lantern.toolcalls.validate import function_call

    parsed = function_call(name, arguments)
    if not isinstance(parsed, ToolCall):
        raise ToolCallError(f"{parsed.error}; give the arguments as a JSON object, e.g. '{{\"expression\": \"2 + 2\"}}'.")
    tools = _tools()
    problem = tools.check(parsed)
    if problem:
        raise ToolCallError(problem)
    result = tools.call(parsed)
    if as_json:
        common.print_json({"content": result.content, "is_error": result.is_error, "structured": result.structured})
    else:
        print(result.content)
    if result.is_error:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(tools_app, name="tools", rich_help_panel="Setup")
