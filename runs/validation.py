"""The rules on what a run may hold: names, text, metric values, file paths, and the errors that
say why something was refused. Pure Python, no Django: the server enforces these rules, and the
SDK checks metric points with the same code before queueing them, so a bad ``run.log`` fails at
once, with the server's own message.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runs import wire

NAME_MAX_LENGTH = 255
TAG_VALUE_MAX_LENGTH = 5000
DESCRIPTION_MAX_LENGTH = 100_000
METRIC_STRING_MAX_LENGTH = 10_000
METRIC_VALUE_MAX_BYTES = 256 * 1024
METRIC_BATCH_MAX_POINTS = 10_000
FILE_PATH_MAX_LENGTH = 1024
CHILDREN_MAX_BATCH = 1000
LOG_CHUNK_MAX_BYTES = 1024 * 1024
LOCAL_TARGET = "local"  # the submitting machine; every workspace has it

_IDENTIFIER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
# Names and keys are single-line; descriptions and tag values may hold tabs and newlines.
_LABEL_FORBIDDEN_RE = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_FORBIDDEN_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- Errors -------------------------------------------------------------------------------------------


class StudioError(Exception):
    """A request the domain refuses. ``status`` is the HTTP status the API answers with."""

    status = 400
    code = "UserError"

    def __init__(self, message: str, *, target: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.target = target
        self.details = details


class InvalidValue(StudioError):
    code = "InvalidValue"


class Conflict(StudioError):
    status = 409
    code = "Conflict"


class IllegalTransition(Conflict):
    code = "IllegalStatusTransition"


class RunEnded(Conflict):
    code = "RunEnded"


class PropertyConflict(Conflict):
    code = "PropertyConflict"

    def __init__(self, key: str, existing: str, new: str) -> None:
        super().__init__(
            f"property {key!r} is already set to {existing!r}; properties are write-once, so it cannot become {new!r}",
            target=f"properties.{key}",
            details={"key": key, "existing": existing, "new": new},
        )


# --- Validation ----------------------------------------------


def validate_identifier(value: Any, what: str, *, max_length: int = NAME_MAX_LENGTH) -> str:
    """Experiment names and run ids: they appear in URLs and file names."""
    if not isinstance(value, str) or not value:
        raise InvalidValue(f"{what} must be a non-empty string", target=what)
    if len(value) > max_length:
        raise InvalidValue(f"{what} is {len(value)} characters long; the limit is {max_length}", target=what)
    if not _IDENTIFIER_RE.match(value):
        raise InvalidValue(
            f"{what} {value!r} may only hold letters, digits, '_', '-' and '.', and must start with a letter or digit",
            target=what,
        )
    return value


def validate_label(value: Any, what: str, *, max_length: int = NAME_MAX_LENGTH, allow_empty: bool = False) -> str:
    """Display names, tag and property keys, metric names: one line of printable text."""
    if not isinstance(value, str):
        raise InvalidValue(f"{what} must be a string", target=what)
    if not value and not allow_empty:
        raise InvalidValue(f"{what} must not be empty", target=what)
    if len(value) > max_length:
        raise InvalidValue(f"{what} is {len(value)} characters long; the limit is {max_length}", target=what)
    if _LABEL_FORBIDDEN_RE.search(value):
        raise InvalidValue(f"{what} must not contain control characters", target=what)
    return value


def validate_text(value: Any, what: str, *, max_length: int) -> str:
    """Free text (descriptions, tag values): newlines and tabs allowed, other control characters not."""
    if not isinstance(value, str):
        raise InvalidValue(f"{what} must be a string", target=what)
    if len(value) > max_length:
        raise InvalidValue(f"{what} is {len(value)} characters long; the limit is {max_length}", target=what)
    if _TEXT_FORBIDDEN_RE.search(value):
        raise InvalidValue(f"{what} must not contain control characters", target=what)
    return value


def normalize_file_path(path: Any) -> str:
    """A run file's path: relative, '/'-separated, with no '.' or '..' parts."""
    validate_label(path, "path", max_length=FILE_PATH_MAX_LENGTH)
    parts = path.split("/")
    if "\\" in path or any(part in ("", ".", "..") for part in parts):
        raise InvalidValue(
            f"path {path!r} must be relative, use '/' between folders, and hold no '.' or '..' parts",
            target="path",
        )
    return "/".join(parts)


class MetricKind(enum.StrEnum):
    SCALAR = "scalar"  # run.log
    LIST = "list"  # run.log_list
    ROW = "row"  # run.log_row
    TABLE = "table"  # run.log_table
    IMAGE = "image"  # run.log_image: the value is the image's path among the run's files


METRIC_KINDS = tuple(kind.value for kind in MetricKind)


_SCALAR_TYPES = (bool, int, float, str)


@dataclass
class PointIn:
    """One metric point as received, checked and decoded."""

    index: int
    name: str
    kind: str
    value: Any
    step: int | None
    time: datetime | None
    description: str

    @classmethod
    def parse(cls, raw: Any, index: int) -> PointIn:
        where = f"points[{index}]"
        if not isinstance(raw, Mapping):
            raise InvalidValue(f"{where} must be an object", target=where)
        name = validate_label(raw.get("name"), f"{where}.name")
        kind = raw.get("kind", MetricKind.SCALAR)
        if kind not in METRIC_KINDS:
            raise InvalidValue(
                f"{where}.kind must be one of {', '.join([k.value for k in MetricKind])}", target=f"{where}.kind"
            )
        if "value" not in raw:
            raise InvalidValue(f"{where}.value is required", target=f"{where}.value")
        value = wire.decode(raw["value"])
        _check_metric_value(kind, value, f"{where}.value")
        step = raw.get("step")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or abs(step) >= 2**63):
            raise InvalidValue(f"{where}.step must be an integer", target=f"{where}.step")
        logged_at = raw.get("time")
        if logged_at is not None:
            try:
                logged_at = datetime.fromisoformat(logged_at)
            except (TypeError, ValueError):
                raise InvalidValue(f"{where}.time must be an ISO 8601 date and time", target=f"{where}.time") from None
            if logged_at.tzinfo is None:
                logged_at = logged_at.replace(tzinfo=UTC)
        description = validate_text(raw.get("description") or "", f"{where}.description", max_length=1000)
        return cls(index, name, kind, value, step, logged_at, description)


def _check_metric_value(kind: str, value: Any, where: str) -> None:
    def scalar(item: Any, at: str) -> None:
        if not isinstance(item, _SCALAR_TYPES):
            raise InvalidValue(f"{at} must be a number, string or boolean, not {_json_type(item)}", target=where)
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**63:
            raise InvalidValue(f"{at} is too large for a 64-bit integer", target=where)
        if isinstance(item, str):
            validate_text(item, at, max_length=METRIC_STRING_MAX_LENGTH)

    if kind in (MetricKind.SCALAR, MetricKind.IMAGE):
        scalar(value, where)
        if kind == MetricKind.IMAGE and not isinstance(value, str):
            raise InvalidValue(f"{where} must be the image's file path", target=where)
    elif kind == MetricKind.LIST:
        if not isinstance(value, list):
            raise InvalidValue(f"{where} must be a list", target=where)
        for i, item in enumerate(value):
            scalar(item, f"{where}[{i}]")
    elif kind == MetricKind.ROW:
        if not isinstance(value, Mapping) or not value:
            raise InvalidValue(f"{where} must be a non-empty object of column: value", target=where)
        for column, item in value.items():
            validate_label(column, f"{where} column")
            scalar(item, f"{where}.{column}")
    elif kind == MetricKind.TABLE:
        if not isinstance(value, Mapping) or not value:
            raise InvalidValue(f"{where} must be a non-empty object of column: list of values", target=where)
        for column, items in value.items():
            validate_label(column, f"{where} column")
            if not isinstance(items, list):
                raise InvalidValue(f"{where}.{column} must be a list", target=where)
            for i, item in enumerate(items):
                scalar(item, f"{where}.{column}[{i}]")
    if len(str(value)) > METRIC_VALUE_MAX_BYTES:
        raise InvalidValue(f"{where} is larger than {METRIC_VALUE_MAX_BYTES} bytes", target=where)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
