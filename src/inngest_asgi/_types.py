"""Rich step and function outputs: values travel as JSON and come back as their declared type.

A callable's return annotation decides, when it names a type JSON alone cannot restore: a
msgspec Struct, a dataclass, a pydantic model, datetime/date/time, UUID, Decimal or an Enum,
also inside containers (``list[Order]``). Plain JSON types are left as they are.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import inspect
import types
import typing
import uuid
from typing import Any

import msgspec

__all__: list[str] = []


class _Empty(enum.Enum):
    EMPTY = enum.auto()


#: Default of ``output_type``: use the callable's return annotation, if it declares one.
EMPTY = _Empty.EMPTY

_RICH = (_dt.datetime, _dt.date, _dt.time, _dt.timedelta, uuid.UUID, decimal.Decimal, enum.Enum)
#: Answers of :func:`declared_output_type` by code object. Code objects live as long as their
#: module, so this holds one entry per step callable defined in the program.
output_types: dict[types.CodeType, Any] = {}
#: The same for decorated functions, by the code of the innermost function they wrap.
_wrapped_output_types: dict[types.CodeType, Any] = {}


def _is_pydantic(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_dump")


def _is_rich(tp: Any) -> bool:
    # Generics first (list[Order], Order | None): Python 3.10 counts list[X] as a type.
    if typing.get_origin(tp) is not None:
        return any(_is_rich(arg) for arg in typing.get_args(tp))
    if isinstance(tp, type):
        return (
            issubclass(tp, (msgspec.Struct, *_RICH))
            or dataclasses.is_dataclass(tp)
            or _is_pydantic(tp)
        )
    return False


def declared_output_type(fn: Any) -> Any:
    """The return annotation of ``fn`` if it is a rich type, else None.

    Called for every memoized step of every replay, so the answer is cached by the function's
    code object: closures made anew on each replay share their code, and so their entry. A
    decorated function (``functools.wraps``) is cached by the code of the function it wraps,
    apart: every function a decorator wraps shares the one code object of its wrapper.
    """
    try:
        return output_types[fn.__code__]
    except (AttributeError, KeyError):
        pass
    inner, cache = fn, output_types
    if getattr(fn, "__wrapped__", None) is not None:
        cache = _wrapped_output_types
        try:
            inner = inspect.unwrap(fn)
        except ValueError:  # a __wrapped__ cycle: nothing to key the cache by
            inner = None
    code = getattr(inner, "__code__", None)
    if code is not None and code in cache:
        return cache[code]
    annotations = getattr(fn, "__annotations__", None)
    if not annotations or "return" not in annotations:
        result = None  # lambdas and unannotated callables
    else:
        try:
            hint = typing.get_type_hints(fn).get("return")
        except Exception:  # unresolved forward references: treat as plain JSON
            hint = None
        result = hint if hint is not None and _is_rich(hint) else None
    if code is not None:
        cache[code] = result
    return result


def convert_output(value: Any, output_type: Any) -> Any:
    """Decode a JSON value into ``output_type`` (msgspec types, dataclasses, pydantic)."""
    if _is_pydantic(output_type):
        return output_type.model_validate(value)
    if typing.get_origin(output_type) is not None and _contains_pydantic(output_type):
        import pydantic  # only reached when the user's own types are pydantic models

        return pydantic.TypeAdapter(output_type).validate_python(value)
    return msgspec.convert(value, output_type, strict=False)


def _contains_pydantic(tp: Any) -> bool:
    return any(_is_pydantic(arg) or _contains_pydantic(arg) for arg in typing.get_args(tp))
