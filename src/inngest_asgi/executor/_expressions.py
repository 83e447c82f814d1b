"""CEL expressions (trigger filters, ``if`` of waits and cancels, idempotency keys), via cel-python.

Expressions are compiled once and cached. An expression that fails to evaluate (a missing
field, a type error) does not match, as on the Inngest server; the failure is logged at debug
level.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel

__all__: list[str] = []

log = logging.getLogger("inngest_asgi.executor")


class ExpressionError(ValueError):
    """An expression that does not compile."""


@functools.lru_cache(maxsize=1)
def _environment() -> celpy.Environment:
    return celpy.Environment()


@functools.lru_cache(maxsize=1024)
def compile_expression(text: str) -> celpy.Runner:
    """Compile ``text``; raises :class:`ExpressionError` naming the problem."""
    env = _environment()
    try:
        return env.program(env.compile(text))
    except Exception as exc:  # cel-python raises several parse error types
        raise ExpressionError(f"invalid expression {text!r}: {exc}") from None


def evaluate(text: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate ``text`` with JSON ``variables``; returns a plain Python value.

    Raises :class:`ExpressionError` when it does not compile or cannot be evaluated.
    """
    program = compile_expression(text)
    activation = {name: json_to_cel(value) for name, value in variables.items()}
    try:
        result = program.evaluate(activation)
    except Exception as exc:  # CELEvalError and the Python errors it may wrap
        raise ExpressionError(f"expression {text!r} failed: {exc}") from None
    return _to_python(result)


def matches(text: str | None, variables: Mapping[str, Any]) -> bool:
    """Whether ``text`` evaluates to ``true``; no expression always matches."""
    if not text:
        return True
    try:
        result = evaluate(text, variables)
    except ExpressionError as exc:
        log.debug("%s; treated as no match", exc)
        return False
    return result is True


def _to_python(value: Any) -> Any:
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, (celtypes.IntType, celtypes.UintType)):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.MapType):
        return {_to_python(k): _to_python(v) for k, v in value.items()}
    if isinstance(value, celtypes.ListType):
        return [_to_python(v) for v in value]
    if value is None or isinstance(value, celtypes.NullType):
        return None
    return value
