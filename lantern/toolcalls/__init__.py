"""Tool calling: parsing and validating what a model asks for, and MCP sessions that run it.

`validate` turns model output into ToolCalls and checks them against a tool's JSON Schema;
`client` keeps one live MCP session per configured server. The Act stage (`lantern.loop.act`)
only wires them into the answer loop.
"""
