"""Each suite's items (external sets skipped when ../shared/eval is absent), the golden set's own
consistency, BFCL scoring by the AST rules, and the cost proxies of a completion."""

from __future__ import annotations

import json

import pytest

from lantern.errors import LanternError
from lantern.eval.suites import GOLDEN, SHIPPED_KB, SUITES, EvalContext, find_data, score_tool_calls
from lantern.records import RejectedCall, ToolCall
from lantern.settings import load_settings

DATA, _ = find_data(None)
needs_data = pytest.mark.skipif(DATA is None, reason="no shared eval data (../shared/eval) on this machine")


def context(**kwargs) -> EvalContext:
    return EvalContext(load_settings(), DATA, [str(DATA)] if DATA else [], **kwargs)


# --- loaders -----------------------------------------------------------------------------------

@needs_data
@pytest.mark.parametrize("name, test_size, fields", [
    ("gsm8k", 660, ("question", "gold")),
    ("math500", 250, ("problem", "gold")),
    ("wice", 179, ("claim", "evidence", "label", "gold_sentences")),
    ("climate-fever", 768, ("claim", "pairs")),
    ("bfcl-simple", 200, ("messages", "tools", "gold_name", "acceptable")),
    ("bfcl-multiple", 100, ("messages", "tools", "gold_name", "acceptable")),
    ("pubmedqa", 500, ("question", "decision", "key")),
])
def test_external_suites_load_disjoint_halves(name, test_size, fields):
    suite = SUITES[name]
    ctx = context()
    dev, test = suite.items(ctx, "dev"), suite.items(ctx, "test")
    assert len(test) == test_size
    assert not {i["id"] for i in dev} & {i["id"] for i in test}
    assert len({i["id"] for i in test}) == len(test)  # ids are unique: --resume relies on them
    for item in test[:3]:
        assert all(item[f] not in (None, "") for f in fields), item["id"]


@needs_data
def test_gsm8k_gold_is_the_number_after_the_hashes():
    first = SUITES["gsm8k"].items(context(), "dev")[0]
    assert first["id"] == "gsm8k/0" and first["gold"] == "18"  # Janet's ducks


@needs_data
def test_bbh_items_go_round_robin_over_the_tasks_so_a_limit_covers_them():
    items = SUITES["bbh"].items(context(), "test")
    assert len({i["task"] for i in items[:27]}) == 27
    examples = SUITES["bbh"]._examples(context(), items[0]["task"])
    assert examples.count("Q:") == 3 and "So the answer is" in examples and "canary" not in examples


@needs_data
def test_bfcl_tools_have_json_schema_types():
    item = next(i for i in SUITES["bfcl-simple"].items(context(), "dev") if i["id"] == "simple_python_0")
    assert item["tools"][0]["input_schema"]["type"] == "object"  # BFCL's "dict"
    assert item["gold_name"] == "calculate_triangle_area" and item["acceptable"]["unit"] == ["units", ""]


def test_missing_external_data_is_one_line_naming_where_it_looked(tmp_path):
    ctx = EvalContext(load_settings(), None, [str(tmp_path / "nowhere")])
    with pytest.raises(LanternError) as info:
        SUITES["gsm8k"].items(ctx, "test")
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "gsm8k" / "test.jsonl") in message and "--data" in message and "\n" not in message


def test_find_data_prefers_the_flag_then_the_setting(tmp_path, monkeypatch):
    assert find_data(str(tmp_path)) == (tmp_path, [str(tmp_path)])
    assert find_data(str(tmp_path / "missing"))[0] is None
    monkeypatch.setenv("LANTERN_EVAL_DATA", str(tmp_path))  # the eval_data setting, as the command reads it
    settings = load_settings()
    assert settings.eval_data == str(tmp_path) and find_data(settings.eval_data)[0] == tmp_path


# --- the golden set ----------------------------------------------------------------------------

def golden_rows() -> list[dict]:
    return [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_golden_facts_are_in_their_gold_sources():
    from lantern.eval.metrics import contains_fact

    for row in golden_rows():
        for fact in row.get("facts", []):
            texts = [(SHIPPED_KB / source).read_text(encoding="utf-8") for source in row["sources"]]
            assert any(contains_fact(text, fact) for text in texts), (row["id"], fact)


def test_golden_set_has_every_item_type_and_both_halves_of_each():
    rows = golden_rows()
    types = {r["type"] for r in rows}
    assert types == {"answerable", "unanswerable", "tool", "continuation"}
    assert len({r["id"] for r in rows}) == len(rows)
    suite, ctx = SUITES["golden"], context()
    dev, test = suite.items(ctx, "dev"), suite.items(ctx, "test")
    assert {r["type"] for r in dev} == {r["type"] for r in test} == types
    assert len(dev) + len(test) == len(rows) and not {r["id"] for r in dev} & {r["id"] for r in test}
    for row in rows:
        if row["type"] == "tool":
            assert row["tool_call"]["name"] in {"calculate", "convert", "weekday", "date_diff", "date_add", "convert_time"} and row["value"]
        if row["type"] == "continuation":
            assert [t["role"] for t in row["history"]] == ["user", "assistant"]


def test_golden_tool_values_are_what_the_tools_return():
    import sys

    sys.path.insert(0, str(SHIPPED_KB.parent / "tools"))
    try:
        import calculator
        import dates
        import units
    finally:
        sys.path.pop(0)
    text = {
        "calculate": lambda a: calculator.sentence(calculator.calculation(a["expression"])),
        "convert": lambda a: units.conversion_sentence(units.convert_units(a["value"], a["from_unit"], a["to_unit"])),
        "weekday": lambda a: dates.weekday_sentence(dates.weekday_info(a["date"])),
        "date_diff": lambda a: dates.difference_sentence(dates.difference(a["start"], a["end"])),
    }
    for row in golden_rows():
        if row["type"] == "tool":
            assert row["value"] in text[row["tool_call"]["name"]](row["tool_call"]["arguments"]), row["id"]


# --- BFCL scoring ------------------------------------------------------------------------------

ITEM = {
    "id": "simple_python_0",
    "tools": [{"name": "calculate_triangle_area", "description": "Area of a triangle.",
               "input_schema": {"type": "object", "properties": {"base": {"type": "integer"}, "height": {"type": "integer"},
                                                                 "unit": {"type": "string"}}, "required": ["base", "height"]}}],
    "gold_name": "calculate_triangle_area",
    "acceptable": {"base": [10], "height": [5], "unit": ["units", ""]},
}


class Done:
    """The fields of a Completion that scoring reads."""

    def __init__(self, text: str = "") -> None:
        self.text, self.tokens, self.prompt_tokens, self.exit_steps = text, 3, 10, None
        self.weight_bytes = self.flops = None
        self.seconds = 0.1


def test_a_gold_call_is_valid_and_correct():
    record = score_tool_calls(ITEM, [ToolCall(name="calculate_triangle_area", arguments={"base": 10, "height": 5})], Done())
    assert record["correct"] and record["valid_calls"] == record["calls"] == 1 and record["mismatch"] is None


def test_a_valid_call_with_a_wrong_value_is_valid_but_not_correct():
    record = score_tool_calls(ITEM, [ToolCall(name="calculate_triangle_area", arguments={"base": 10, "height": 6})], Done())
    assert not record["correct"] and record["valid_calls"] == 1 and "height" in record["mismatch"]


def test_invalid_and_unparseable_calls_are_not_valid():
    unknown = score_tool_calls(ITEM, [ToolCall(name="area", arguments={"base": 10, "height": 5})], Done())
    assert unknown["valid_calls"] == 0 and unknown["calls"] == 1 and "unknown tool" in unknown["problems"][0]
    wrong_type = score_tool_calls(ITEM, [ToolCall(name="calculate_triangle_area", arguments={"base": "10", "height": 5})], Done())
    assert wrong_type["valid_calls"] == 0 and not wrong_type["correct"]
    broken = score_tool_calls(ITEM, [RejectedCall(raw="CALL_TOOL calculate_triangle_area {base", error="arguments are not a JSON object")], Done())
    assert broken["calls"] == 1 and broken["valid_calls"] == 0 and not broken["correct"]
    nothing = score_tool_calls(ITEM, [], Done("The area is 25."))
    assert nothing["calls"] == 0 and not nothing["called"] and not nothing["correct"]


def test_two_calls_where_one_is_asked_for_are_not_correct():
    call = ToolCall(name="calculate_triangle_area", arguments={"base": 10, "height": 5})
    assert not score_tool_calls(ITEM, [call, call], Done())["correct"]


def test_bfcl_ast_rules():
    from lantern.toolcalls.bfcl import ast_mismatch

    acceptable = {"x": [4], "y": [5.0], "z": ["", 0], "name": ["New York, NY"], "point": [[1, 2]],
                  "options": [{"scale": [2], "mode": ["", "fast"]}], "flag": ["", True]}
    given = {"x": 4, "y": 5, "name": "new york ny", "point": [1, 2], "options": {"scale": 2}}
    assert ast_mismatch("f", given, "f", acceptable) is None  # int for float, standardised string, optional args omitted
    assert ast_mismatch("g", given, "f", acceptable) == "called 'g', expected 'f'"
    assert "missing argument x" == ast_mismatch("f", {k: v for k, v in given.items() if k != "x"}, "f", acceptable)
    assert "unexpected argument w" == ast_mismatch("f", given | {"w": 1}, "f", acceptable)
    assert "x" in ast_mismatch("f", given | {"x": 4.0}, "f", {**acceptable, "x": [4]})  # a float where an int is gold
    assert "point" in ast_mismatch("f", given | {"point": [2, 1]}, "f", acceptable)
    assert "options" in ast_mismatch("f", given | {"options": {"scale": 3}}, "f", acceptable)
    assert "flag" in ast_mismatch("f", given | {"flag": 1}, "f", acceptable)  # 1 is not True


# --- cost proxies --------------------------------------------------------------------------------

def test_loop_cost_follows_the_runtime_bench_formula():
    from lantern.backends.complete import LoopCost, loop_cost

    cost = LoopCost(layer_bytes=100, head_bytes=10, kv_bytes_per_position=2, num_layers=2, num_steps=4, layer_params=50,
                    head_params=5, attention_width=1)
    read, flops = loop_cost(cost, prompt_tokens=3, exit_steps=[4, 2, 1])
    # prefill: 4 x 100 + 10; token 2 (context 4): 2 x (100 + 2 x 2 x 4) + 10; token 3 (context 5): 1 x (100 + 2 x 2 x 5) + 10
    assert read == 410 + 242 + 130
    prefill = 2 * 3 * 4 * 50 + 2 * 5 + sum(4 * 2 * 4 * 1 * c for c in (1, 2, 3))
    assert flops == prefill + (2 * (2 * 50 + 5) + 4 * 2 * 2 * 4) + (2 * (1 * 50 + 5) + 4 * 2 * 1 * 5)
    deep, _ = loop_cost(cost, 3, [4, 1, 1])
    fast, _ = loop_cost(cost, 3, [4, 4, 4])
    assert deep < fast
    assert loop_cost(cost, 3, []) == (0.0, 0.0)


def test_complete_on_a_tiny_checkpoint_reports_exit_steps_and_costs(tmp_path):
    from lantern.backends.complete import complete, loop_cost_of
    from lantern.backends.ouro import loaded
    from lantern.runtime.bench import weight_bytes
    from lantern.runtime.testing import make_random_checkpoint

    path = make_random_checkpoint(tmp_path / "tiny", "tiny", seed=1)
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    per_token = {}
    for mode in ("fast", "deep"):
        settings = load_settings({"model": str(path), "dtype": "float32", "max_new_tokens": 12, "mode": mode})
        done = complete(settings, messages, 12)
        assert done.backend == "ouro" and done.tokens == len(done.exit_steps) > 0 and done.prompt_tokens > 0
        assert all(1 <= s <= 4 for s in done.exit_steps)
        if mode == "fast":
            assert set(done.exit_steps) == {4}
        per_token[mode] = done.weight_bytes / done.tokens
        assert done.flops > 0
    lm = loaded(str(path), "auto", "float32", "none")
    cost = loop_cost_of(lm)
    assert cost.layer_bytes == weight_bytes(lm.model.model.layers) + weight_bytes(lm.model.model.norm) + weight_bytes(lm.model.model.early_exit_gate)
    assert per_token["deep"] <= per_token["fast"]


def test_completion_text_stops_before_a_stop_string():
    from lantern.backends.complete import cut_at_stop

    assert cut_at_stop("So the answer is (A).\n\nQ: next", ["\n\nQ:"]) == "So the answer is (A)."
    assert cut_at_stop("no stop", ["\n\nQ:"]) == "no stop"


def test_complete_on_a_tiny_transformers_model_estimates_its_costs(tmp_path):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from lantern.backends.complete import complete
    from lantern.runtime.testing import write_tokenizer

    path = tmp_path / "tiny-llama"
    path.mkdir()
    write_tokenizer(path, 512)
    tokenizer = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, max_position_embeddings=4096, bos_token_id=0, eos_token_id=2, pad_token_id=0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    n_params = sum(p.numel() for p in model.parameters())
    settings = load_settings({"backend": "hf", "model": str(path), "dtype": "float32"})
    done = complete(settings, [{"role": "user", "content": "What is 2 + 2?"}], 8)
    assert done.backend == "hf" and done.exit_steps is None and 0 < done.tokens <= 8 and done.prompt_tokens > 0
    assert done.flops == 2 * n_params * (done.prompt_tokens + done.tokens)  # the stated estimate
    assert done.weight_bytes >= 4 * n_params * done.tokens and "estimate" in done.cost_note
