"""The calculator tool server: safe evaluation, and the real MCP round trip."""

import importlib.util
from pathlib import Path

import anyio
import pytest

SPEC = importlib.util.spec_from_file_location("calculator", Path(__file__).parents[2] / "tools" / "calculator.py")
calculator = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(calculator)


@pytest.mark.parametrize("expression, value", [("4 * 24", 96), ("2^10", 1024), ("-(3 + 4) // 2", -4), ("sqrt(16) + pi - pi", 4.0)])
def test_arithmetic(expression, value):
    assert calculator.evaluate(expression) == value


@pytest.mark.parametrize("expression", ["__import__('os')", "1/0", "2**100000", "open('x')", "1 +", "x" * 600])
def test_rejects_anything_but_arithmetic(expression):
    with pytest.raises(calculator.CalculationError):
        calculator.evaluate(expression)


def test_mcp_round_trip_validates_and_returns_structured_output():
    from mcp import Client

    async def main():
        async with Client(calculator.server) as client:
            tools = await client.list_tools()
            tool = next(t for t in tools.tools if t.name == "calculate")
            assert tool.input_schema["required"] == ["expression"]
            result = await client.call_tool("calculate", {"expression": "4 * 24"})
            assert not result.is_error and result.structured_content["value"] == 96
            failed = await client.call_tool("calculate", {"expression": "1/0"})
            assert failed.is_error

    anyio.run(main)


@pytest.mark.parametrize("expression, exact, value", [
    ("0.1 + 0.2", "0.3", 0.3),  # the float path alone gives 0.30000000000000004
    ("1/3", "1/3", 1 / 3),
    ("2340 * 17.5 / 100", "409.5", 409.5),
    ("4 * 24", "96", 96),
    ("-1/8", "-0.125", -0.125),
    ("2^-2 * 3", "0.75", 0.75),
    ("7 // 2 + 7 % 2", "4", 4),
])
def test_exact_result_from_the_literals_decimal_text(expression, exact, value):
    result = calculator.calculation(expression)
    assert result.exact == exact and result.value == value


@pytest.mark.parametrize("expression", ["sqrt(16)", "2 ** 0.5", "pi * 2", "max(1, 2)"])
def test_no_exact_result_once_a_function_constant_or_fractional_power_is_used(expression):
    assert calculator.calculation(expression).exact is None


def test_sentence_reads_as_arithmetic():
    assert calculator.sentence(calculator.calculation("2340 * 17.5 / 100")) == "2340 * 17.5 / 100 = 409.5"
    assert calculator.sentence(calculator.calculation("1/3")) == "1/3 = 1/3 (about 0.3333333333333333)"
    assert calculator.sentence(calculator.calculation("sqrt(2)")) == "sqrt(2) = 1.4142135623730951 (floating point, not exact)"


@pytest.mark.parametrize("expression, reason", [("(10**1000)**1000", "bits"), ("10**400", "too large"), ("1e400", "too large")])
def test_huge_results_are_refused_quickly(expression, reason):
    with pytest.raises(calculator.CalculationError, match=reason):
        calculator.calculation(expression)


def test_mcp_result_has_a_sentence_for_the_model_and_exact_structured_content():
    from mcp import Client

    async def main():
        async with Client(calculator.server) as client:
            tool = next(t for t in (await client.list_tools()).tools if t.name == "calculate")
            assert "exact" in tool.output_schema["properties"]
            # Lantern refuses tools that do not declare themselves read-only and closed-world.
            assert tool.annotations.read_only_hint is True and tool.annotations.open_world_hint is False
            result = await client.call_tool("calculate", {"expression": "0.1 + 0.2"})
            assert result.content[0].text == "0.1 + 0.2 = 0.3"
            assert result.structured_content == {"expression": "0.1 + 0.2", "value": 0.3, "exact": "0.3"}
            failed = await client.call_tool("calculate", {"expression": "1/0"})
            # The reason reaches the model, on one line (not just "Error executing tool calculate").
            assert failed.is_error and failed.content[0].text.endswith("division by zero") and "\n" not in failed.content[0].text

    anyio.run(main)
