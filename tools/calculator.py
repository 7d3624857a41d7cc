"""Lantern's calculator MCP tool server: exact arithmetic for the reasoning model.

Small models get arithmetic wrong; a claim such as "4 x 24 = 96 cache slots" is better computed
than generated. This server evaluates arithmetic expressions safely (a whitelist over Python's
AST: numbers, + - * / // % **, parentheses, and a few math functions), never `eval`.

Run it with `python tools/calculator.py` (stdio transport), or configure it in config.toml:
    [mcp_servers.calculator]
    command = "python"
    args = ["tools/calculator.py"]
"""

from __future__ import annotations

import ast
import math
import operator

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 1000

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


class CalculationError(ValueError):
    """The expression is not plain arithmetic, or cannot be evaluated."""


def evaluate(expression: str) -> float | int:
    """Value of an arithmetic expression; raises CalculationError with a one-line reason."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.replace("^", "**").replace("×", "*"), mode="eval")
    except SyntaxError as exc:
        raise CalculationError(f"not an arithmetic expression: {exc.msg}") from exc
    try:
        return _value(tree.body)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as exc:
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
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculationError(f"exponent larger than {MAX_EXPONENT}")
        return BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS and not node.keywords:
        return FUNCTIONS[node.func.id](*[_value(arg) for arg in node.args])
    raise CalculationError(f"unsupported element {ast.dump(node)[:60]}")


class Calculation(BaseModel):
    expression: str
    value: float


server = MCPServer("calculator", instructions="Exact arithmetic. Call calculate for any computation.")


@server.tool()
def calculate(expression: str) -> Calculation:
    """Evaluate an arithmetic expression such as '4 * 24' or 'sqrt(2) / 3'; returns its exact value."""
    return Calculation(expression=expression, value=float(evaluate(expression)))


if __name__ == "__main__":
    server.run()
