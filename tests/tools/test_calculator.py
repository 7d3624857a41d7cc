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
