"""Tool calls as models write them: parsing (text protocol, <tool_call> blocks, native function calls),
lenient JSON, check_call's refusals naming the field, the BFCL type map, and bench/tools.py on a
few BFCL items when ../shared/eval/bfcl is there."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lantern.records import RejectedCall, ToolCall
from lantern.toolcalls.bfcl import bfcl_schema
from lantern.toolcalls.validate import check_call, function_call, lenient_json, parse_tool_calls, validation_error

ROOT = Path(__file__).resolve().parents[2]
BFCL = ROOT.parent / "shared" / "eval" / "bfcl"

SEARCH = {
    "type": "object",
    "properties": {
        "query": {"type": "string"},
        "limit": {"type": "integer"},
        "order": {"type": "string", "enum": ["newest", "oldest"]},
        "filters": {"type": "array", "items": {"type": "object", "properties": {"op": {"type": "string", "enum": ["=", "<"]}}}},
        "weight": {"type": "number"},
    },
    "required": ["query"],
}
SCHEMAS = {"search": SEARCH, "calculator": {"type": "object", "properties": {"expression": {"type": "string"}}}}


def rejected(arguments: dict, name: str = "search") -> str | None:
    return check_call(ToolCall(name=name, arguments=arguments), SCHEMAS)


# --- parse_tool_calls -------------------------------------------------------------------------

def test_text_protocol_line_is_a_call():
    calls, bad = parse_tool_calls('Let me look.\nCALL_TOOL search {"query": "lantern", "limit": 3}\n')
    assert calls == [ToolCall(name="search", arguments={"query": "lantern", "limit": 3})] and bad == []


def test_text_protocol_forgives_colon_backticks_and_no_arguments():
    calls, bad = parse_tool_calls('CALL_TOOL: `search` `{"query": "x"}`\nCALL_TOOL calculator')
    assert calls == [ToolCall(name="search", arguments={"query": "x"}), ToolCall(name="calculator")] and bad == []


def test_text_protocol_with_another_prefix():
    calls, _ = parse_tool_calls('TOOL search {"query": "x"}', prefix="TOOL")
    assert calls == [ToolCall(name="search", arguments={"query": "x"})]


def test_text_protocol_without_a_name_is_rejected_saying_so():
    calls, bad = parse_tool_calls('CALL_TOOL {"query": "x"}')
    assert calls == [] and "needs a tool name" in bad[0].error


def test_tool_call_block_and_line_in_one_text():
    text = 'CALL_TOOL calculator {"expression": "1+1"}\n<tool_call>\n{"name": "search", "arguments": {"query": "x"}}\n</tool_call>'
    calls, bad = parse_tool_calls(text)
    assert calls == [ToolCall(name="calculator", arguments={"expression": "1+1"}), ToolCall(name="search", arguments={"query": "x"})]
    assert bad == []


def test_unclosed_tool_call_block_still_parses():
    # A model stopped at the end of its call, before the closing tag.
    calls, _ = parse_tool_calls('<tool_call>{"name": "search", "arguments": {"query": "x"}}')
    assert calls == [ToolCall(name="search", arguments={"query": "x"})]


def test_tool_call_block_that_is_not_an_object_is_rejected():
    calls, bad = parse_tool_calls("<tool_call>search(query='x')</tool_call>")
    assert calls == [] and "must be a JSON object" in bad[0].error


# --- lenient_json -----------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ['```json\n{"query": "x"}\n```', '```\n{"query": "x"}\n```', "{'query': 'x'}",
                                 '{"query": "x"} and then I will answer', '  {"query": "x"}  '])
def test_lenient_json_forgives_fences_single_quotes_and_trailing_text(raw):
    assert lenient_json(raw) == {"query": "x"}


@pytest.mark.parametrize("raw", ['{"query": "x"', "query=x", ""])
def test_lenient_json_gives_none_for_what_is_not_json(raw):
    assert lenient_json(raw) is None


# --- function_call ----------------------------------------------------------------------------

def test_function_call_name_and_json_string():
    assert function_call("search", '{"query": "x"}') == ToolCall(name="search", arguments={"query": "x"})


def test_function_call_empty_string_and_dict_mean_those_arguments():
    assert function_call("calculator", "  ") == ToolCall(name="calculator")
    assert function_call("search", {"query": "x"}) == ToolCall(name="search", arguments={"query": "x"})


@pytest.mark.parametrize("body", ['{"name": "search", "arguments": {"query": "x"}}',
                                  '{"name": "search", "arguments": "{\\"query\\": \\"x\\"}"}',
                                  '{"name": "search", "parameters": {"query": "x"}}',
                                  {"name": "search", "arguments": {"query": "x"}}])
def test_function_call_name_and_arguments_object(body):
    assert function_call(None, body) == ToolCall(name="search", arguments={"query": "x"})


def test_function_call_broken_arguments_say_they_are_not_an_object():
    call = function_call("search", '{"query": "x", "lim')
    assert isinstance(call, RejectedCall) and call.error.startswith("search: arguments are not a JSON object")
    assert "arguments are not a JSON object" in function_call("search", "[1, 2]").error


def test_function_call_object_without_a_name_is_rejected():
    call = function_call(None, '{"arguments": {"query": "x"}}')
    assert isinstance(call, RejectedCall) and "must be a JSON object" in call.error


def test_malformed_json_in_the_text_protocol_says_so_and_names_the_tool():
    calls, bad = parse_tool_calls('CALL_TOOL search {"query": "x", "lim')
    assert calls == [] and bad[0].error.startswith("search: arguments are not a JSON object")


# --- check_call: each corruption kind, and the exact field it names ---------------------------

def test_a_conforming_call_passes():
    assert rejected({"query": "x", "limit": 2, "order": "newest", "filters": [{"op": "="}], "weight": 0.5}) is None


def test_an_int_is_a_number():
    # BFCL python gold writes 25 for a float parameter; JSON Schema "number" takes integers.
    assert rejected({"query": "x", "weight": 25}) is None


def test_wrong_type_names_the_argument():
    assert rejected({"query": "x", "limit": "3"}) == "invalid arguments for search: limit: '3' is not of type 'integer'"


def test_missing_required_names_the_argument():
    assert rejected({"limit": 3}) == "invalid arguments for search: arguments: 'query' is a required property"


def test_unknown_argument_names_it_and_lists_the_declared_ones():
    assert rejected({"query": "x", "color": "red"}) == (
        "invalid arguments for search: color: unknown argument; expected query, limit, order, filters, weight")


def test_enum_violation_names_the_argument():
    assert rejected({"query": "x", "order": "random"}).startswith("invalid arguments for search: order: 'random' is not one of")


def test_nested_violation_names_the_path():
    assert rejected({"query": "x", "filters": [{"op": "="}, {"op": ">"}]}).startswith("invalid arguments for search: filters/1/op: '>'")


def test_unknown_tool_names_it_and_the_available_ones():
    assert rejected({"query": "x"}, name="serch") == "unknown tool 'serch'; available: calculator, search"


def test_validation_error_is_none_or_one_line():
    assert validation_error({"query": "x"}, SEARCH) is None
    assert "\n" not in validation_error({"query": 1}, SEARCH)


# --- bfcl_schema ------------------------------------------------------------------------------

BFCL_FUNCTION = {
    "type": "dict",
    "properties": {
        "point": {"type": "tuple", "items": {"type": "float"}},
        "data": {"type": "any", "description": "anything"},
        "type": {"type": "string", "enum": ["dict", "float"], "default": "dict"},
        "options": {"type": "dict", "properties": {"scale": {"type": "float"}, "rows": {"type": "array", "items": {"type": "dict", "properties": {"w": {"type": "float"}}}}}},
    },
    "required": ["point"],
}


def test_bfcl_schema_maps_types_at_every_depth():
    schema = bfcl_schema(BFCL_FUNCTION)
    props = schema["properties"]
    assert schema["type"] == "object" and schema["required"] == ["point"]
    assert props["point"] == {"type": "array", "items": {"type": "number"}}
    assert props["data"] == {"description": "anything"}  # any: no type constraint at all
    assert props["options"]["type"] == "object" and props["options"]["properties"]["scale"] == {"type": "number"}
    assert props["options"]["properties"]["rows"]["items"] == {"type": "object", "properties": {"w": {"type": "number"}}}


def test_bfcl_schema_leaves_property_names_enums_defaults_and_its_input_alone():
    before = repr(BFCL_FUNCTION)
    prop = bfcl_schema(BFCL_FUNCTION)["properties"]["type"]
    assert prop == {"type": "string", "enum": ["dict", "float"], "default": "dict"}
    assert repr(BFCL_FUNCTION) == before


def test_bfcl_schema_maps_type_lists_and_schema_lists():
    assert bfcl_schema({"type": ["float", "dict"]}) == {"type": ["number", "object"]}
    assert bfcl_schema({"anyOf": [{"type": "tuple"}, {"type": "any"}]}) == {"anyOf": [{"type": "array"}, {}]}


def test_bfcl_schema_makes_a_usable_input_schema():
    schemas = {"f": bfcl_schema(BFCL_FUNCTION)}
    good = {"point": [1, 2.5], "data": {"x": [1]}, "options": {"scale": 2, "rows": [{"w": 1.5}]}}
    assert check_call(ToolCall(name="f", arguments=good), schemas) is None
    assert "options/rows/0/w" in check_call(ToolCall(name="f", arguments={**good, "options": {"rows": [{"w": "1"}]}}), schemas)


# --- the benchmark on a few real BFCL items ---------------------------------------------------

def load_bench():
    spec = importlib.util.spec_from_file_location("bench_tools", ROOT / "bench" / "tools.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gold_arguments_read_nested_dicts_as_acceptable_value_lists():
    bench = load_bench()
    acceptable = {"a": [1, 2], "b": ["", 3], "c": [""], "d": [{"x": ["y", "z"], "o": ["", 1]}], "e": [[{"k": [5]}]]}
    assert bench.gold_arguments(acceptable) == {"a": 1, "d": {"x": "y"}, "e": [{"k": 5}]}


@pytest.mark.skipif(not BFCL.is_dir(), reason=f"no BFCL data at {BFCL}")
def test_bench_on_a_few_bfcl_items():
    bench = load_bench()
    # simple_python_96 has an enum inside an array of objects; multiple_8 a dict-valued gold.
    items = [item for name in bench.FILES for item in bench.load(BFCL, name)
             if item["id"] in {"simple_python_0", "simple_python_96", "simple_python_200", "multiple_0", "multiple_8"}]
    report = bench.measure(items)
    assert [f["id"] for f in report["gold_failures"]] == ["simple_python_200"]
    assert report["gold_failures"][0]["diagnosis"].startswith("upstream label quirk")
    assert report["corruption_misses"] == []
    for kind, splits in report["corruptions_rejected"].items():
        assert splits["all"]["calls"] > 0 and splits["all"]["field_named"] == splits["all"]["calls"], kind
