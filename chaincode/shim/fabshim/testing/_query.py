"""Query semantics shared by ``MemoryStub`` and test peers: ranges, pages, selectors."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InvalidArgumentError

LEVELDB_RICH_QUERY_ERROR = "ExecuteQuery not supported for leveldb"
LEVELDB_RICH_QUERY_PAGED_ERROR = "ExecuteQueryWithMetadata not supported for leveldb"


def in_range(key: str, start: str, end: str) -> bool:
    """``start <= key < end``; an empty ``end`` is open."""
    return key >= start and (end == "" or key < end)


def range_page(
    keys: Iterable[str], start: str, end: str, page_size: int | None, bookmark: str
) -> tuple[list[str], str]:
    """Keys of one page and the bookmark that continues it (LevelDB semantics).

    The bookmark is the first key of the next page, or ``""`` when nothing follows.
    Without ``page_size`` every key in range is returned.
    """
    if bookmark:
        start = bookmark
    selected = sorted(k for k in keys if in_range(k, start, end))
    if page_size is None or len(selected) <= page_size:
        return selected, ""
    return selected[:page_size], selected[page_size]


def rich_query_page(
    entries: Mapping[str, bytes], query: str, page_size: int | None, bookmark: str
) -> tuple[list[str], str]:
    """Keys matching a Mango-style query, in key order, one page at a time.

    Supports ``{"selector": {...}}`` with field equality, dotted paths, ``$eq``, ``$ne``,
    ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$in``, ``$exists``, ``$and`` and ``$or``, and an
    optional ``"limit"``. The bookmark is the last key returned while more follow.
    """
    try:
        document = json.loads(query)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"query is not JSON: {exc.msg}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("selector"), dict):
        raise InvalidArgumentError('query must be a JSON object with a "selector" object')
    selector = document["selector"]
    matched = []
    for key in sorted(entries):
        if bookmark and key <= bookmark:
            continue
        try:
            value = json.loads(entries[key])
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(value, dict) and _matches(value, selector):
            matched.append(key)
    limit = document.get("limit")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
        page_size = limit if page_size is None else min(page_size, limit)
    if page_size is None or len(matched) <= page_size:
        return matched, ""
    page = matched[:page_size]
    return page, page[-1]


_MISSING = object()


def _lookup(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _compare(value: Any, operator: str, operand: Any) -> bool:
    if operator == "$exists":
        return (value is not _MISSING) == bool(operand)
    if value is _MISSING:
        return False
    if operator == "$eq":
        return bool(value == operand)
    if operator == "$ne":
        return bool(value != operand)
    if operator == "$in":
        return isinstance(operand, list) and value in operand
    if operator in ("$gt", "$gte", "$lt", "$lte"):
        if isinstance(value, bool) or isinstance(operand, bool):
            return False
        both_numbers = isinstance(value, int | float) and isinstance(operand, int | float)
        both_strings = isinstance(value, str) and isinstance(operand, str)
        if not (both_numbers or both_strings):
            return False
        if operator == "$gt":
            return bool(value > operand)
        if operator == "$gte":
            return bool(value >= operand)
        if operator == "$lt":
            return bool(value < operand)
        return bool(value <= operand)
    raise InvalidArgumentError(f"unsupported selector operator {operator}")


def _matches(document: Mapping[str, Any], selector: Mapping[str, Any]) -> bool:
    for field, condition in selector.items():
        if field == "$and":
            if not all(_matches(document, sub) for sub in condition):
                return False
            continue
        if field == "$or":
            if not any(_matches(document, sub) for sub in condition):
                return False
            continue
        value = _lookup(document, field)
        if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition):
            if not all(_compare(value, op, operand) for op, operand in condition.items()):
                return False
        elif not _compare(value, "$eq", condition):
            return False
    return True
