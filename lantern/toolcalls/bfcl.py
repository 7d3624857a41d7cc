"""BFCL function definitions as JSON Schema.

The Berkeley Function Calling Leaderboard (BFCL) writes parameter types with Python names: `dict`,
`float`, `tuple` and `any` where JSON Schema has `object`, `number` and `array`, and no
constraint for `any`. `bfcl_schema` maps them so BFCL functions can serve as tool `inputSchema`s
for `lantern.toolcalls.validate.check_call` (bench/tools.py, `lantern eval`).
"""

from __future__ import annotations

from typing import Any

BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array"}
"""BFCL type name -> JSON Schema type; `any` is dropped (no constraint), other names are kept."""

# Keywords whose value is one schema, or a list of schemas; `properties` maps names to schemas.
ONE_SCHEMA = ("items", "additionalProperties", "not", "contains", "if", "then", "else")
SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def bfcl_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    """A copy of a BFCL function's `parameters` with BFCL type names mapped to JSON Schema ones.

    `dict` -> `object`, `float` -> `number`, `tuple` -> `array`, `any` -> no `type` at all, at every
    depth (`properties`, `items`, `additionalProperties`, `anyOf`...). Only schema positions are
    mapped: a property that happens to be named "type", `enum` and `default` values are left as
    they are. The input is not modified.
    """
    schema: dict[str, Any] = {}
    for key, value in parameters.items():
        if key == "type":
            mapped = [BFCL_TYPES.get(t, t) for t in value] if isinstance(value, list) else BFCL_TYPES.get(value, value)
            if mapped != "any" and not (isinstance(mapped, list) and "any" in mapped):
                schema["type"] = mapped
        elif key == "properties" and isinstance(value, dict):
            schema[key] = {name: _sub(sub) for name, sub in value.items()}
        elif key in ONE_SCHEMA:
            schema[key] = _sub(value)
        elif key in SCHEMA_LISTS and isinstance(value, list):
            schema[key] = [_sub(sub) for sub in value]
        else:
            schema[key] = value
    return schema


def _sub(value: Any) -> Any:
    """A nested schema mapped; booleans (`additionalProperties: false`) and lists of `items` too."""
    if isinstance(value, dict):
        return bfcl_schema(value)
    if isinstance(value, list):
        return [_sub(sub) for sub in value]
    return value
