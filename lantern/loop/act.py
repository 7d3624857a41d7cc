"""Act (the loop stage): the tool calls a draft asked for -> checked, run, and turned into evidence.

Parsing and schema checks live in `lantern.toolcalls.validate`, MCP sessions in
`lantern.toolcalls.client`; this stage only decides what to do with each call: an unparseable
or invalid call never runs and its error goes back to the model; a call that repeats a tool
request written inside a retrieved document is refused (documents are data, not instructions);
a result becomes an evidence passage the answer can cite and the verifier check.

This module knows nothing about claims or verification.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from lantern.records import Evidence, ToolCall, ToolResult


class ToolRunner(Protocol):
    def list_tools(self) -> list[dict[str, Any]]: ...
    def check(self, call: ToolCall) -> str | None: ...
    def call(self, call: ToolCall) -> ToolResult: ...


def requested_by_document(call: ToolCall, evidence: list[Evidence], prefix: str) -> int | None:
    """The number of a knowledge-base passage that itself asks for this tool (a tool-call line or block
    naming it), or None. Text in a document never triggers a tool by itself: a model that repeats
    such a request is refused."""
    name = re.escape(call.name.rsplit("__", 1)[-1])
    pattern = re.compile(rf"(?:{re.escape(prefix)}|<tool_call>)[^\n]{{0,80}}?\b{name}\b", re.IGNORECASE)
    for number, passage in enumerate(evidence, 1):
        if not passage.source.startswith("tool:") and pattern.search(passage.text):
            return number
    return None


def as_evidence(result: ToolResult, index: int) -> Evidence:
    """A successful tool result as an evidence passage the claims can cite and the verifier check."""
    arguments = json.dumps(result.call.arguments, ensure_ascii=False)
    text = f"{result.call.name}({arguments}) returned: {result.content}"
    return Evidence(chunk_id=f"tool-{index}", source=f"tool:{result.call.name}", text=text, start_line=1, end_line=1, heading="tool result", score=1.0)
