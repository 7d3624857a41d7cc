"""Lantern's doors for other programs: `mcp_server` (MCP over stdio and streamable HTTP).

Each renders the answer loop's events (`lantern.loop.events`); none re-implements a stage.
"""
