"""Arguments in, results out: decoding string arguments by annotation, encoding results.

Parameter types: ``str`` (UTF-8, as is), ``bytes`` (raw), ``int`` (a decimal integer,
strictly: no sign ``+``, no spaces, no leading zeros), ``bool`` (``true``/``false``),
``list``/``dict`` and their generic forms (``list[int]``, ``dict[str, list[str]]`` ...;
JSON text), ``typing.Literal`` of strings or integers, and ``enum.Enum`` subclasses (by
value). ``float`` is refused everywhere, in parameters, inside JSON and in results: money
is integer minor units.

Transient inputs declared with ``@transaction(transient=...)`` are described (not decoded)
by :func:`json_schema`, which also knows dataclasses, ``X | None`` and tuples.

Results: ``None`` is an empty payload, ``bytes`` go as they are, anything else is JSON
(sorted keys, compact, UTF-8) so every endorsing peer produces the same bytes. Dataclass
instances and enums are converted (``dataclasses.asdict``, ``.value``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ContractDefinitionError

Schema = dict[str, Any]

_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class Codec:
    """How one parameter type is decoded from an argument, and its JSON schema."""

    decode: Callable[[bytes], Any]
    schema: Schema


def _reject_float(text: str) -> Any:
    raise ValueError("floats are not accepted (amounts are integer minor units)")


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not valid JSON")


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("not valid UTF-8") from exc


def parse_json(raw: bytes) -> Any:
    """Parse JSON, refusing floats, NaN and Infinity."""
    try:
        return json.loads(_text(raw), parse_float=_reject_float, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from exc


def _decode_int(raw: bytes) -> int:
    text = _text(raw)
    if not _INTEGER.fullmatch(text):
        raise ValueError("not an integer")
    return int(text)


def _decode_bool(raw: bytes) -> bool:
    text = _text(raw)
    if text == "true":
        return True
    if text == "false":
        return False
    raise ValueError("not true or false")


Validator = Callable[[Any], None]


def _validator(annotation: Any, where: str) -> tuple[Validator, Schema]:
    """A check that a parsed JSON value matches ``annotation``, and its schema."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is float:
        raise ContractDefinitionError(f"{where}: float is not supported (use int minor units)")
    if annotation is Any or annotation is object:
        return (lambda value: None), {}
    if annotation is str:
        return _instance_check(str, "a string"), {"type": "string"}
    if annotation is bool:
        return _instance_check(bool, "true or false"), {"type": "boolean"}
    if annotation is int:

        def check_int(value: Any) -> None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("not an integer")

        return check_int, {"type": "integer"}
    if origin is typing.Literal:
        return _literal(args, where)
    if annotation is list or origin in (list, Sequence):
        item_check, item_schema = _validator(args[0] if args else Any, where)

        def check_list(value: Any) -> None:
            if not isinstance(value, list):
                raise ValueError("not a JSON array")
            for item in value:
                item_check(item)

        schema: Schema = {"type": "array"}
        if item_schema:
            schema["items"] = item_schema
        return check_list, schema
    if annotation is dict or origin in (dict, Mapping):
        if args and args[0] is not str:
            raise ContractDefinitionError(f"{where}: dict keys must be str (JSON object keys)")
        value_check, value_schema = _validator(args[1] if args else Any, where)

        def check_dict(value: Any) -> None:
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
            for item in value.values():
                value_check(item)

        schema = {"type": "object"}
        if value_schema:
            schema["additionalProperties"] = value_schema
        return check_dict, schema
    raise ContractDefinitionError(f"{where}: unsupported type {annotation!r}")


def _instance_check(kind: type, description: str) -> Validator:
    def check(value: Any) -> None:
        if not isinstance(value, kind):
            raise ValueError(f"not {description}")

    return check


def _literal(values: tuple[Any, ...], where: str) -> tuple[Validator, Schema]:
    if not values or not all(
        isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) for v in values
    ):
        raise ContractDefinitionError(f"{where}: Literal values must be strings or integers")
    allowed = list(values)

    def check(value: Any) -> None:
        if isinstance(value, bool) or value not in allowed:
            raise ValueError("not one of the allowed values")

    kinds = {"string" if isinstance(v, str) else "integer" for v in allowed}
    schema: Schema = {"enum": allowed}
    if len(kinds) == 1:
        schema["type"] = kinds.pop()
    return check, schema


def codec_for(annotation: Any, where: str) -> Codec:
    """The codec of a parameter annotation; ``ContractDefinitionError`` if unsupported."""
    if annotation is str:
        return Codec(_text, {"type": "string"})
    if annotation is bytes:
        return Codec(bytes, {"type": "string", "format": "byte"})
    if annotation is int:
        return Codec(_decode_int, {"type": "integer"})
    if annotation is bool:
        return Codec(_decode_bool, {"type": "boolean"})
    if annotation is float:
        raise ContractDefinitionError(f"{where}: float is not supported (use int minor units)")
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_codec(annotation, where)
    if typing.get_origin(annotation) is typing.Literal:
        check, schema = _validator(annotation, where)
        kinds = {type(v) for v in typing.get_args(annotation)}

        def decode_literal(raw: bytes) -> Any:
            value: Any = _decode_int(raw) if kinds == {int} else _text(raw)
            check(value)
            return value

        return Codec(decode_literal, schema)
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        raise ContractDefinitionError(f"{where}: union and optional types are not supported")
    check, schema = _validator(annotation, where)
    if schema.get("type") not in ("array", "object"):
        raise ContractDefinitionError(f"{where}: unsupported type {annotation!r}")

    def decode_json(raw: bytes) -> Any:
        value = parse_json(raw)
        check(value)
        return value

    return Codec(decode_json, schema)


def _enum_codec(kind: type[enum.Enum], where: str) -> Codec:
    values = [member.value for member in kind]
    if all(isinstance(v, str) for v in values):

        def decode(raw: bytes) -> Any:
            try:
                return kind(_text(raw))
            except ValueError as exc:
                raise ValueError("not one of the allowed values") from exc

        return Codec(decode, {"type": "string", "enum": values})
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):

        def decode_int(raw: bytes) -> Any:
            try:
                return kind(_decode_int(raw))
            except ValueError as exc:
                raise ValueError("not one of the allowed values") from exc

        return Codec(decode_int, {"type": "integer", "enum": values})
    raise ContractDefinitionError(f"{where}: enum values must be all strings or all integers")


def json_schema(annotation: Any, where: str) -> Schema:
    """The JSON schema of a value of type ``annotation``, as it travels in JSON.

    Beyond the parameter types: a dataclass is an object of its fields (those without a
    default are required, no other field is allowed), ``X | None`` is ``X``'s schema (the
    field may be absent or null), ``tuple[X, ...]`` and ``tuple[X, Y]`` are arrays.
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _dataclass_schema(annotation, where)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_codec(annotation, where).schema
    if origin in (types.UnionType, typing.Union):
        present = [a for a in args if a is not type(None)]
        if len(present) != 1:
            raise ContractDefinitionError(f"{where}: only X | None unions are supported")
        return json_schema(present[0], where)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": json_schema(args[0], where)}
        if len(set(args)) == 1:
            return {"type": "array", "items": json_schema(args[0], where),
                    "minItems": len(args), "maxItems": len(args)}
        raise ContractDefinitionError(f"{where}: a tuple's items must have one type")
    if origin in (list, Sequence) and args:
        return {"type": "array", "items": json_schema(args[0], where)}
    if origin in (dict, Mapping) and args:
        if args[0] is not str:
            raise ContractDefinitionError(f"{where}: dict keys must be str (JSON object keys)")
        value = json_schema(args[1], where)
        return {"type": "object", **({"additionalProperties": value} if value else {})}
    return _validator(annotation, where)[1]


def _dataclass_schema(kind: type, where: str) -> Schema:
    try:
        hints = typing.get_type_hints(kind)
    except (NameError, TypeError) as exc:
        raise ContractDefinitionError(f"{where}: cannot resolve annotations: {exc}") from exc
    properties: Schema = {}
    required: list[str] = []
    for field in dataclasses.fields(kind):
        if not field.init:
            continue
        properties[field.name] = json_schema(hints[field.name], f"{where}.{field.name}")
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            required.append(field.name)
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def return_schema(annotation: Any, where: str) -> Schema | None:
    """The JSON schema of a return annotation (None for ``None``/no value)."""
    if annotation is None or annotation is type(None):
        return None
    if annotation is bytes:
        return {"type": "string", "format": "byte"}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_codec(annotation, where).schema
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return {"type": "object"}
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        return {}
    return _validator(annotation, where)[1]


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        raise TypeError("float results are not allowed (amounts are integer minor units)")
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("result object keys must be strings")
            out[key] = _plain(item)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise TypeError(f"cannot encode a {type(value).__name__} result as JSON")


def encode_result(value: Any) -> bytes:
    """The payload of a transaction result (see the module docstring)."""
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
