"""Tool requests as models write them -> ToolCalls, checked against the tool's JSON Schema.

Models ask for tools in three shapes: Lantern's text protocol (`CALL_TOOL name {json}`, one line,
prefix from prompts/answer.toml), the `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
blocks many chat templates teach, and native function calls of an OpenAI-compatible endpoint
(name + JSON string). All are parsed leniently (code fences, single quotes, trailing text); what
cannot be parsed is returned as a problem saying what was wrong, never raised. `validation_error`
names the offending field in one line.

This module knows nothing about MCP sessions or answers.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from lantern.records import RejectedCall, ToolCall


def parse_tool_calls(text: str, prefix: str = "CALL_TOOL") -> tuple[list[ToolCall], list[RejectedCall]]:
    """(calls, rejected): every `PREFIX name {json}` line and `<tool_call>` block of `text`."""
    calls: list[ToolCall] = []
    rejected: list[RejectedCall] = []
    for match in re.finditer(rf"{re.escape(prefix)}\s*:?\s*`*([A-Za-z0-9_.\-]*)`*\s*(.*)", text):
        name, raw = match.group(1), match.group(2).strip().strip("`").strip()
        if not name:
            rejected.append(RejectedCall(raw=match.group(0).strip(), error=f"{prefix} needs a tool name: {prefix} <name> <JSON arguments>"))
        elif not raw:
            calls.append(ToolCall(name=name))
        else:
            arguments = lenient_json(raw)
            if isinstance(arguments, dict):
                calls.append(ToolCall(name=name, arguments=arguments))
            else:
                rejected.append(RejectedCall(raw=match.group(0).strip(), error=f"{name}: arguments are not a JSON object ({raw[:60]})"))
    for match in re.finditer(r"<tool_call>(.*?)(?:</tool_call>|$)", text, re.DOTALL):
        call = function_call(None, match.group(1).strip())
        (calls if isinstance(call, ToolCall) else rejected).append(call)
    return calls, rejected


def function_call(name: str | None, arguments: str | dict | None) -> ToolCall | RejectedCall:
    """A native function call (name + JSON arguments), or a `{"name", "arguments"}` object when
    `name` is None, as a ToolCall, or a RejectedCall saying what is wrong with it."""
    if arguments is None:
        arguments = {}  # a call with no arguments
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    if name is None:
        body = lenient_json(raw)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return RejectedCall(raw=raw, error='a tool call must be a JSON object {"name": ..., "arguments": {...}}')
        name, arguments = body["name"], body.get("arguments", body.get("parameters", {}))
        if isinstance(arguments, str):
            arguments = lenient_json(arguments)
    elif isinstance(arguments, str):
        arguments = lenient_json(arguments) if arguments.strip() else {}
    if not isinstance(arguments, dict):
        return RejectedCall(raw=raw, error=f"{name}: arguments are not a JSON object ({raw[:60]})")
    return ToolCall(name=name, arguments=arguments)


def lenient_json(raw: str) -> Any:
    """JSON from a model: code fences, text after the object and single quotes are forgiven."""
    raw = re.sub(r"^```(?:json)?\s*|\s*```$", "", raw.strip())
    end = raw.rfind("}")
    candidate = raw[: end + 1] if end >= 0 else raw
    for attempt in (candidate, candidate.replace("'", '"')):
        try:
            return json.loads(attempt)
        except json.JSONDecodeError:
            continue
    return None


def check_call(call: ToolCall, schemas: dict[str, dict[str, Any]]) -> str | None:
    """Why `call` must not run against tools `schemas` (name -> inputSchema), or None. Unknown
    tools and arguments the schema does not declare are refused even when the schema leaves
    `additionalProperties` open: a model that invents an argument has misread the tool."""
    if call.name not in schemas:
        known = ", ".join(sorted(schemas)) or "none"
        return f"unknown tool {call.name!r}; available: {known}"
    schema = schemas[call.name] or {"type": "object"}
    declared = schema.get("properties")
    if isinstance(declared, dict) and schema.get("additionalProperties") in (None, False):
        unknown = [name for name in call.arguments if name not in declared]
        if unknown:
            return (f"invalid arguments for {call.name}: {unknown[0]}: unknown argument; "
                    f"expected {', '.join(declared) or 'no arguments'}")
    problem = validation_error(call.arguments, schema)
    return f"invalid arguments for {call.name}: {problem}" if problem else None


def validation_error(arguments: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """One line saying why `arguments` break `schema` (naming the field), or None when they conform."""
    import jsonschema

    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except jsonschema.SchemaError as exc:
        return f"the tool's own schema is invalid ({exc.message})"
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "arguments"
    return f"{where}: {error.message}"


@functools.lru_cache(maxsize=512)
def _validator(schema_json: str):
    """A validator per distinct schema, its schema checked once (jsonschema.validate re-checks the
    schema against its metaschema on every call: ~1,250 calls/s instead of tens of thousands)."""
    import jsonschema

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)
