"""Lantern's calculator MCP tool server: exact arithmetic for the reasoning model.

Small models get arithmetic wrong; a claim such as "4 x 24 = 96 cache slots" is better computed
than generated. This server evaluates arithmetic expressions safely (a whitelist over Python's
AST: numbers, + - * / // % **, parentheses, and a few math functions), never `eval`.

What it knows: numbers written as integer or decimal literals, + - * / // % ** (also ^ and x for
** and *), parentheses, the functions sqrt log log2 log10 exp abs round min max, and the
constants pi and e. When an expression uses only literals, + - * / // % and integer powers, the
result is also given exactly (`exact`: "409.5", "0.3", "1/3"), computed with fractions from the
literals' decimal text, so 0.1 + 0.2 is exactly 0.3 rather than 0.30000000000000004. What it does
not know: variables, units, dates, symbolic algebra, or anything beyond a float once a function or
constant is involved (then `exact` is null).

Run it with `python tools/calculator.py` (stdio transport), or configure it in config.toml:
    [mcp_servers.calculator]
    command = "python"
    args = ["tools/calculator.py"]
"""

from __future__ import annotations

import ast
import math
import operator
from fractions import Fraction
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 1000
# An integer or fraction raised to a power is computed exactly, so its size must be bounded before
# the power is taken ((10**1000)**1000 would otherwise run for minutes).
MAX_RESULT_BITS = 100_000

BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
FUNCTIONS = {"sqrt": math.sqrt, "log": math.log, "log2": math.log2, "log10": math.log10, "exp": math.exp,
             "abs": abs, "round": round, "min": min, "max": max}
CONSTANTS = {"pi": math.pi, "e": math.e}


class CalculationError(ToolError, ValueError):
    """The expression is not plain arithmetic, or cannot be evaluated.

    A ToolError, so MCPServer hands its message to the model (any other exception reaches the
    model only as "Error executing tool calculate"); a ValueError for plain Python callers."""


class Calculation(BaseModel):
    expression: str
    value: float = Field(description="The result as a floating-point number.")
    exact: str | None = Field(None, description="The exact result (an integer, a terminating decimal such as '409.5', "
                                                "or a fraction such as '1/3'); null when a function or constant was used.")


def evaluate(expression: str) -> float | int:
    """Value of an arithmetic expression; raises CalculationError with a one-line reason."""
    tree, _ = _parse(expression)
    return _guarded(_value, tree.body)


def calculation(expression: str) -> Calculation:
    """The float value of an expression and, when it stays within exact arithmetic, its exact value."""
    tree, source = _parse(expression)
    value = _guarded(_value, tree.body)  # checks every element, and is the answer when exact is None
    exact = _guarded(_exact, tree.body, source)
    try:
        if exact is not None:
            value = float(exact)  # the float nearest the exact value, not the float path's rounding
        if not math.isfinite(value):
            raise OverflowError
    except OverflowError:
        raise CalculationError("the result is too large for a floating-point number") from None
    return Calculation(expression=expression.strip(), value=value, exact=None if exact is None else exact_text(exact))


def exact_text(number: Fraction) -> str:
    """'96', '409.5', '-0.001' when the number has a terminating decimal expansion, else '1/3'."""
    denominator = number.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    if denominator != 1:
        return f"{number.numerator}/{number.denominator}"
    places = max(twos, fives)  # the fewest decimal places that hold the number exactly
    if places == 0:
        return str(number.numerator)
    digits = str(abs(number.numerator) * 10**places // number.denominator).rjust(places + 1, "0")
    return f"{'-' if number < 0 else ''}{digits[:-places]}.{digits[-places:]}"


def sentence(result: Calculation) -> str:
    """The result as a line a person (or Lantern's verifier) reads: '2340 * 17.5 / 100 = 409.5'."""
    if result.exact is None:
        return f"{result.expression} = {_float_text(result.value)} (floating point, not exact)"
    if "/" in result.exact:
        return f"{result.expression} = {result.exact} (about {_float_text(result.value)})"
    return f"{result.expression} = {result.exact}"


def _float_text(value: float) -> str:
    return f"{value:.0f}" if value.is_integer() and abs(value) < 1e16 else repr(value)


def _parse(expression: str) -> tuple[ast.Expression, str]:
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    source = expression.strip().replace("^", "**").replace("×", "*")
    try:
        return ast.parse(source, mode="eval"), source
    except SyntaxError as exc:
        raise CalculationError(f"not an arithmetic expression: {exc.msg}") from exc


def _guarded(function, *args):
    """Run one evaluation step, turning Python's arithmetic errors into one-line CalculationErrors."""
    try:
        return function(*args)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as exc:
        if isinstance(exc, CalculationError):
            raise
        raise CalculationError(str(exc)) from exc


def _value(node: ast.AST) -> float | int:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and node.id in CONSTANTS:
        return CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        return BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS and not node.keywords:
        return FUNCTIONS[node.func.id](*[_value(arg) for arg in node.args])
    raise CalculationError(f"unsupported element {ast.dump(node)[:60]}")


def _exact(node: ast.AST, source: str) -> Fraction | None:
    """The exact rational value of a node `_value` accepted, or None once a function, a constant
    or a fractional power leaves exact arithmetic."""
    if isinstance(node, ast.Constant):
        # A float literal's own text ("0.1"), not the binary float it became (0.1000000000000000055...).
        text = ast.get_source_segment(source, node) if isinstance(node.value, float) else None
        return Fraction(text.replace("_", "")) if text else Fraction(node.value)
    if isinstance(node, ast.UnaryOp):
        operand = _exact(node.operand, source)
        return None if operand is None else UNARY[type(node.op)](operand)
    if isinstance(node, ast.BinOp):
        left, right = _exact(node.left, source), _exact(node.right, source)
        if left is None or right is None or (isinstance(node.op, ast.Pow) and right.denominator != 1):
            return None
        if isinstance(node.op, ast.Pow):
            return Fraction(_power(left, int(right)))
        return Fraction(BINARY[type(node.op)](left, right))
    return None


def _power(base, exponent):
    if abs(exponent) > MAX_EXPONENT:
        raise CalculationError(f"exponent larger than {MAX_EXPONENT}")
    if isinstance(base, (int, Fraction)) and _bits(base) * abs(exponent) > MAX_RESULT_BITS:
        raise CalculationError(f"the result would have more than {MAX_RESULT_BITS:,} bits")
    return base**exponent


def _bits(number: int | Fraction) -> int:
    number = Fraction(number)
    return max(abs(number.numerator).bit_length(), number.denominator.bit_length())


# Lantern runs a tool only when it declares itself read-only and closed-world (no writes, no
# network), unless its server is listed as trusted; these tools only compute.
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
server = MCPServer("calculator", instructions="Exact arithmetic. Call calculate for any computation.")


@server.tool(annotations=READ_ONLY)
def calculate(
    expression: Annotated[str, Field(description="Arithmetic such as '2340 * 17.5 / 100', '2^10' or 'sqrt(2) / 3'.")],
) -> Annotated[CallToolResult, Calculation]:
    """Evaluate an arithmetic expression such as '4 * 24' or 'sqrt(2) / 3'; returns its value, exact when it can be."""
    result = calculation(expression)
    # The text block is what the model reads; the structured content is what programs read.
    return CallToolResult(content=[TextContent(type="text", text=sentence(result))],
                          structured_content=result.model_dump(mode="json"))


if __name__ == "__main__":
    server.run()
