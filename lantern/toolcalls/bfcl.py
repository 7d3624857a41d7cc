"""BFCL function definitions as JSON Schema.

The Berkeley Function Calling Leaderboard (BFCL) writes parameter types with Python names: `dict`,
`float`, `tuple` and `any` where JSON Schema has `object`, `number` and `array`, and no
constraint for `any`. `bfcl_schema` maps them so BFCL functions can serve as tool `inputSchema`s
for `lantern.toolcalls.validate.check_call` (bench/tools.py, `lantern eval`).

Gold answers: `gold_arguments` reads one gold call out of a possible_answer entry (each argument at
its first acceptable value), and `ast_mismatch` says why a model's call does not match the gold
by BFCL's AST rules (None when it does). This module knows nothing about models or files.
"""

from __future__ import annotations

import re
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


# --- gold answers ---------------------------------------------------------------------------------
# BFCL's possible_answer files give, for each item, the function to call and, for each argument,
# the list of acceptable values; "" in that list means the argument may be omitted, and a dict
# inside a value is written the same way again ({key: [acceptable values]}).


def gold_arguments(acceptable: dict[str, list]) -> dict[str, Any]:
    """One gold call's arguments: each at its first acceptable value; omitted when that value is "" (may be omitted)."""
    return {name: gold_value(values[0]) for name, values in acceptable.items() if values and values[0] != ""}


def gold_value(value: Any) -> Any:
    """BFCL writes a dict inside a gold value as {key: [acceptable values]} again: read it alike."""
    if isinstance(value, dict):
        return gold_arguments(value)
    if isinstance(value, list):
        return [gold_value(v) for v in value]
    return value


def ast_mismatch(name: str, arguments: dict[str, Any], gold_name: str, acceptable: dict[str, list]) -> str | None:
    """Why a call does not match BFCL's gold by its AST rules, or None when it does: the function
    name is the gold one; every argument given is a gold argument with one of its acceptable values;
    every gold argument not given may be omitted (its list holds ""). Values: strings equal once
    case, spaces and , . / - _ * ^ are ignored (BFCL's standardisation); an int is accepted where
    the gold has the same float; lists element by element in order; dicts key by key, each key's
    value again a list of acceptable values."""
    if name != gold_name:
        return f"called {name!r}, expected {gold_name!r}"
    return _arguments_mismatch(arguments, acceptable, "")


def _arguments_mismatch(arguments: dict[str, Any], acceptable: dict[str, list], where: str) -> str | None:
    for key, value in arguments.items():
        if key not in acceptable:
            return f"unexpected argument {where}{key}"
        if not any(_same(value, option) for option in acceptable[key] if option != ""):
            return f"{where}{key} = {value!r} is not one of {acceptable[key]!r}"
    for key, options in acceptable.items():
        if key not in arguments and "" not in options:
            return f"missing argument {where}{key}"
    return None


def _same(value: Any, gold: Any) -> bool:
    if isinstance(gold, str):
        return isinstance(value, str) and _standard(value) == _standard(gold)
    if isinstance(gold, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(gold, bool) and value == gold
    if isinstance(gold, (int, float)):
        return isinstance(value, (int, float)) and (value == gold if isinstance(gold, float) else isinstance(value, int) and value == gold)
    if isinstance(gold, (list, tuple)):
        return isinstance(value, (list, tuple)) and len(value) == len(gold) and all(_same(v, g) for v, g in zip(value, gold))
    if isinstance(gold, dict):
        return isinstance(value, dict) and _arguments_mismatch(value, gold, "") is None
    return value == gold


def _standard(text: str) -> str:
    """BFCL's string standardisation: case, spaces and , . / - _ * ^ do not count; ' and \" are alike."""
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


def openai_name(name: str) -> str:
    """A BFCL function name as OpenAI-style APIs accept it (letters, digits, _ and - only): `math.factorial`
    -> `math_factorial`, as BFCL itself does for those models."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)
