"""Tool-call validator benchmark: BFCL simple_python and multiple gold calls, and corruptions of them.

Reads BFCL v4 from ../shared/eval/bfcl (`--data DIR` to point elsewhere; never copied into the
repository). Each item's functions become JSON Schemas through `lantern.toolcalls.bfcl.bfcl_schema`
and the schemas map of a call is all functions of its item. Gold call: the function named by
possible_answer, each argument at its first acceptable value, omitted when that value is ""
("may be omitted"); dicts inside the gold are read the same way (their values are lists of
acceptable values too).

Every gold call must be accepted, written in each shape a model writes one: a native function call
(`function_call(name, json)`), a `CALL_TOOL name {json}` line and a `<tool_call>` block, each parsed
and then checked with `check_call`. Every accepted gold call is then corrupted in each applicable
way (wrong type, missing required argument, unknown argument, enum violation, unknown tool,
malformed JSON through function_call and through CALL_TOOL), and every corruption must be
rejected with a message naming the field (the argument; the tool for an unknown tool; "arguments
are not a JSON object" for malformed JSON). Dev = first half of each file by line order, test =
second half; both are reported, and the whole. Gold calls that fail are listed with the
validator's message and, where the gold itself explains the failure, why.

    .venv/bin/python bench/tools.py [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lantern.records import RejectedCall, ToolCall  # noqa: E402
from lantern.toolcalls.bfcl import bfcl_schema, gold_arguments  # noqa: E402
from lantern.toolcalls import validate  # noqa: E402

DATA = ROOT.parent / "shared" / "eval" / "bfcl"
FILES = ("simple_python", "multiple")
SHAPES = ("function_call", "CALL_TOOL", "<tool_call>")
KINDS = ("wrong_type", "missing_required", "unknown_argument", "enum_violation", "unknown_tool",
         "malformed_json_function_call", "malformed_json_CALL_TOOL")
NOT_AN_OBJECT = "arguments are not a JSON object"
# A value of another JSON type for each schema type ("1.5" not 1.5 for integer: JSON has one number type).
WRONG_TYPE = {"string": 12345, "integer": "12", "number": "1.5", "boolean": "true", "array": "a, b", "object": "{}", "null": 0}
ABSENT = object()


# --- data -------------------------------------------------------------------------------------

def missing_files(data: Path) -> list[Path]:
    wanted = [data / f"BFCL_v4_{name}.json" for name in FILES] + [data / "possible_answer" / f"BFCL_v4_{name}.json" for name in FILES]
    return [path for path in wanted if not path.is_file()]


def load(data: Path, name: str) -> list[dict]:
    """One BFCL file's items: id, file, split, schemas (name -> JSON Schema), answers, gold call."""
    lines = (data / f"BFCL_v4_{name}.json").read_text(encoding="utf-8").splitlines()
    answers = {row["id"]: row["ground_truth"][0] for row in map(json.loads, (data / "possible_answer" / f"BFCL_v4_{name}.json").open())}
    items = []
    for index, row in enumerate(map(json.loads, lines)):
        (tool, acceptable), = answers[row["id"]].items()  # simple and multiple: exactly one call
        items.append({"id": row["id"], "file": name, "split": "dev" if index < len(lines) // 2 else "test",
                      "schemas": {f["name"]: bfcl_schema(f["parameters"]) for f in row["function"]},
                      "answers": acceptable, "gold": ToolCall(name=tool, arguments=gold_arguments(acceptable))})
    return items


# --- gold calls in the three shapes ----------------------------------------------------------

def written(call: ToolCall, shape: str) -> list[ToolCall | RejectedCall]:
    """What the parser makes of `call` as a model would write it in `shape`."""
    arguments = json.dumps(call.arguments, ensure_ascii=False)
    if shape == "function_call":
        return [validate.function_call(call.name, arguments)]
    if shape == "CALL_TOOL":
        calls, rejected = validate.parse_tool_calls(f"CALL_TOOL {call.name} {arguments}")
    else:
        body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
        calls, rejected = validate.parse_tool_calls(f"<tool_call>\n{body}\n</tool_call>")
    return [*calls, *rejected]


def gold_problem(item: dict, shape: str, timer: "Timer") -> str | None:
    """Why the gold call written in `shape` is not accepted, or None."""
    parsed = written(item["gold"], shape)
    if len(parsed) != 1 or isinstance(parsed[0], RejectedCall):
        return f"parsed as {[p.model_dump() for p in parsed]}"
    if parsed[0] != item["gold"]:
        return f"parsed arguments differ: {parsed[0].arguments}"
    return timer.check(parsed[0], item["schemas"])


def diagnosis(item: dict, problem: str) -> str:
    """Whether the gold itself explains a failure (no id is special-cased)."""
    missing = re.search(r"'([^']+)' is a required property", problem)
    if missing and item["answers"].get(missing.group(1), [None])[0] == "":
        return (f"upstream label quirk: the gold lists \"\" (may be omitted) first for required argument "
                f"{missing.group(1)!r} (acceptable: {item['answers'][missing.group(1)]})")
    return "unexplained"


# --- corruptions -----------------------------------------------------------------------------

def corruptions(call: ToolCall, schemas: dict) -> list[tuple[str, ToolCall | str, str]]:
    """(kind, corrupted call or broken JSON text, the word its rejection must name) for `call`."""
    schema, args = schemas[call.name], call.arguments
    props = schema.get("properties", {})
    out = []
    typed = [n for n in args if isinstance(props.get(n, {}).get("type"), str)]
    if typed:
        out.append(("wrong_type", with_args(call, {**args, typed[0]: WRONG_TYPE[props[typed[0]]["type"]]}), typed[0]))
    required = [n for n in schema.get("required", []) if n in args]
    if required:
        out.append(("missing_required", with_args(call, {n: v for n, v in args.items() if n != required[0]}), required[0]))
    extra = unused_name("unexpected_argument", props)
    out.append(("unknown_argument", with_args(call, {**args, extra: 1}), extra))
    broken = break_enum(args, schema)
    if broken is not None:
        changed = next(n for n in broken if broken[n] != args.get(n, ABSENT))
        out.append(("enum_violation", with_args(call, broken), changed))
    renamed = unused_name(call.name + "_v2", schemas)
    out.append(("unknown_tool", ToolCall(name=renamed, arguments=args), renamed))
    text = json.dumps(args, ensure_ascii=False)
    truncated = text[: max(1, len(text) // 2)]  # cut mid-way: a model stopped by max_new_tokens
    out += [("malformed_json_function_call", truncated, NOT_AN_OBJECT), ("malformed_json_CALL_TOOL", truncated, NOT_AN_OBJECT)]
    return out


def with_args(call: ToolCall, arguments: dict) -> ToolCall:
    return ToolCall(name=call.name, arguments=arguments)


def unused_name(name: str, taken) -> str:
    while name in taken:
        name += "_x"
    return name


def break_enum(value, schema: dict):
    """`value` with its first enum-bound part (at any depth, added when absent) set outside the
    enum; None when no part of `schema` has an enum that can be reached this way."""
    if "enum" in schema:
        return outside(schema["enum"])
    if isinstance(schema.get("items"), dict):
        elements = value if isinstance(value, list) and value else [ABSENT]
        for index, element in enumerate(elements):
            broken = break_enum(element, schema["items"])
            if broken is not None:
                return [*elements[:index], broken, *elements[index + 1:]]
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            broken = break_enum(value.get(key, ABSENT), sub)
            if broken is not None:
                return {**value, key: broken}
    return None


def outside(enum: list):
    """A value of the enum's own type that is not in it (so only the enum is broken)."""
    if enum and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in enum):
        return max(enum) + 1
    return unused_name(f"not {enum[0]}" if enum else "anything", enum)


def rejection(kind: str, corrupted: ToolCall | str, name: str, schemas: dict, timer: "Timer") -> str | None:
    """The message the corrupted call is rejected with, or None when it is accepted."""
    if kind == "malformed_json_function_call":
        parsed = [validate.function_call(name, corrupted)]
    elif kind == "malformed_json_CALL_TOOL":
        calls, rejected = validate.parse_tool_calls(f"CALL_TOOL {name} {corrupted}")
        parsed = [*rejected, *calls]
    else:
        parsed = [corrupted]
    if isinstance(parsed[0], RejectedCall):
        return parsed[0].error
    return timer.check(parsed[0], schemas)


def names(message: str, word: str) -> bool:
    """`word` appears in `message` as a whole name (not inside a longer one)."""
    return re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", message) is not None


# --- measuring -------------------------------------------------------------------------------

class Timer:
    """check_call, counted and timed (the figure the bench reports as calls per second)."""

    def __init__(self) -> None:
        self.calls, self.seconds = 0, 0.0

    def check(self, call: ToolCall, schemas: dict) -> str | None:
        started = time.perf_counter()
        problem = validate.check_call(call, schemas)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return problem


def measure(items: list[dict]) -> dict:
    """The report for `items` (from `load`): gold acceptance per file and split, corruption
    rejection per kind and split, every gold failure and every corruption miss."""
    timer = Timer()
    gold = defaultdict(lambda: {"calls": 0, "accepted": 0})
    corrupted = defaultdict(lambda: {"calls": 0, "rejected": 0, "field_named": 0})
    gold_failures, misses = [], []
    for item in items:
        problems = {shape: gold_problem(item, shape, timer) for shape in SHAPES}
        failed = {shape: p for shape, p in problems.items() if p}
        for split in (item["split"], "all"):
            gold[item["file"], split]["calls"] += 1
            gold[item["file"], split]["accepted"] += not failed
        if failed:
            problem = next(iter(failed.values()))
            gold_failures.append({"id": item["id"], "shapes": sorted(failed), "error": problem, "diagnosis": diagnosis(item, problem)})
            continue  # corrupting a call that already fails would not test the corruption
        for kind, bad, word in corruptions(item["gold"], item["schemas"]):
            message = rejection(kind, bad, item["gold"].name, item["schemas"], timer)
            for split in (item["split"], "all"):
                counts = corrupted[kind, split]
                counts["calls"] += 1
                counts["rejected"] += message is not None
                counts["field_named"] += message is not None and names(message, word)
            if message is None or not names(message, word):
                misses.append({"id": item["id"], "kind": kind, "must_name": word, "message": message})
    return {
        "gold_accepted": {name: {split: with_percent(gold[name, split], "accepted") for split in ("dev", "test", "all") if (name, split) in gold}
                          for name in dict.fromkeys(item["file"] for item in items)},
        "gold_failures": gold_failures,
        "corruptions_rejected": {kind: {split: with_percent(corrupted[kind, split], "field_named") for split in ("dev", "test", "all") if (kind, split) in corrupted}
                                 for kind in KINDS},
        "corruption_misses": misses,
        "check_call_calls": timer.calls,
        "check_call_per_second": round(timer.calls / timer.seconds) if timer.seconds else None,
    }


def with_percent(counts: dict, key: str) -> dict:
    return counts | {"percent": round(100 * counts[key] / counts["calls"], 1) if counts["calls"] else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the BFCL v4 data folder (default: ../shared/eval/bfcl)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    missing = missing_files(args.data)
    if missing:
        print(f"bench/tools.py: no BFCL data: {missing[0]} is absent (pass --data DIR with BFCL_v4_*.json and possible_answer/)", file=sys.stderr)
        sys.exit(2)
    started = time.perf_counter()
    items = [item for name in FILES for item in load(args.data, name)]
    report = {"data": os.path.relpath(args.data, ROOT), "items": {name: sum(item["file"] == name for item in items) for name in FILES}}
    report |= measure(items)
    report |= {"seconds": round(time.perf_counter() - started, 2), "machine": f"{os.cpu_count()} CPU cores, no GPU"}
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
