"""Safe parsing of user expressions such as ``"w*Abs(w)**2"`` or ``"sinh(w)"``.

The text is parsed with :mod:`ast` and rebuilt node by node from a whitelist of
arithmetic, numbers, named symbols and elementary functions; nothing is ever passed to
``eval``/``sympify`` (which would execute arbitrary Python).
"""

from __future__ import annotations

import ast
import operator

import sympy as sp

MAX_LENGTH = 500
MAX_CONSTANT = 1e6
MAX_EXPONENT = 64

FUNCTIONS = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": sp.Abs, "Abs": sp.Abs,
    "sign": sp.sign, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "sinh": sp.sinh,
    "cosh": sp.cosh, "tanh": sp.tanh, "asinh": sp.asinh, "atan": sp.atan, "atanh": sp.atanh,
}
CONSTANTS = {"pi": sp.pi, "E": sp.E}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}


def parse_expression(text: str, symbols: dict[str, sp.Symbol], name: str = "g") -> sp.Expr:
    """Parse ``text`` into a SymPy expression over ``symbols``; ``ValueError`` names ``name``."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a string or a SymPy expression, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"{name} is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"{name} is not a valid expression: {exc.msg}") from None
    return _build(tree.body, symbols, name)


def _build(node, symbols, name):
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _build(node.left, symbols, name), _build(node.right, symbols, name)
        if isinstance(node.op, ast.Pow) and right.is_Number and abs(right) > MAX_EXPONENT:
            raise ValueError(f"{name}: exponent {right} is larger than {MAX_EXPONENT}")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _build(node.operand, symbols, name)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        if abs(node.value) > MAX_CONSTANT:
            raise ValueError(f"{name}: constant {node.value!r} is larger than {MAX_CONSTANT:g}")
        return sp.Rational(repr(node.value)) if isinstance(node.value, float) else sp.Integer(node.value)
    if isinstance(node, ast.Name):
        if node.id in symbols:
            return symbols[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        allowed = ", ".join(sorted(symbols) + sorted(CONSTANTS))
        raise ValueError(f"{name}: unknown name {node.id!r} (allowed: {allowed})")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id not in FUNCTIONS:
            raise ValueError(f"{name}: unknown function {node.func.id!r} "
                             f"(allowed: {', '.join(sorted(FUNCTIONS))})")
        return FUNCTIONS[node.func.id](*(_build(a, symbols, name) for a in node.args))
    raise ValueError(f"{name}: unsupported syntax {ast.dump(node)[:60]}")
