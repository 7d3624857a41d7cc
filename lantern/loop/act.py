"""Act (the loop stage): the tool calls a draft asked for -> checked, run, and turned into evidence.

Parsing and schema checks live in `lantern.toolcalls.validate`, MCP sessions in
`lantern.toolcalls.client`; this stage only decides what to do with each call: an unparseable
or invalid call never runs and its error goes back to the model; a result becomes an evidence
passage the answer can cite and the verifier check.

This module knows nothing about claims or verification.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from lantern.records import Evidence, ToolCall, ToolResult


class ToolRunner(Protocol):
    def list_tools(self) -> list[dict[str, Any]]: ...
    def check(self, call: ToolCall) -> str | None: ...
    def call(self, call: ToolCall) -> ToolResult: ...


def as_evidence(result: ToolResult, index: int) -> Evidence:
    """A successful tool result as an evidence passage the claims can cite and the verifier check."""
    arguments = json.dumps(result.call.arguments, ensure_ascii=False)
    text = f"{result.call.name}({arguments}) returned: {result.content}"
    return Evidence(chunk_id=f"tool-{index}", source=f"tool:{result.call.name}", text=text, start_line=1, end_line=1, heading="tool result", score=1.0)
