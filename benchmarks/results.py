"""The results file: one versioned JSON document per run, written atomically.

Layout (version 2; version 1 had no stopping rules, schedules or convergence-aware fates):
  schema: "trapbench-results", version: 2, created: ISO time,
  environment: {python, torch, platform, machine, processor, cpu_count, git_commit, git_dirty},
  suite: the suite as run (its spec, so the run can be repeated),
  cells: [{id, problem, problem_info, optimizer, config, metrics, records, checkpoints, wall_s}],
  errors: [{id, error}] for cells that failed (the rest of the run is kept).
Non-finite numbers are written as null (strict JSON).

Every field, its type, meaning and unit is in ``results_schema.json`` (a JSON Schema, draft
2020-12, shipped with the package); ``read`` validates each file against it, so a damaged or
hand-edited file fails with one line naming the field, not a KeyError deep in a report.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SCHEMA = "trapbench-results"
VERSION = 2
SCHEMA_FILE = Path(__file__).with_name("results_schema.json")
# JSON Schema keywords the validator below understands; the shipped schema uses no others
# (tested), so validating needs no third-party package
KEYWORDS = {
    "$schema", "$id", "title", "description", "type", "properties", "required",
    "additionalProperties", "items", "enum", "const", "minimum", "maximum", "minItems",
    "maxItems",
}  # fmt: skip
JSON_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (
        isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer()
    ),
}


class ResultsError(ValueError):
    """A results file that cannot be read; the message names the fix."""


def _clean(obj):
    """numpy and non-finite values -> plain JSON (NaN and inf become null)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def git_commit(cwd: Path | None = None) -> tuple[str | None, bool | None]:
    root = cwd or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
        )
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def environment() -> dict:
    import torch  # here, not at import: `trapbench list` and `report` need no torch

    commit, dirty = git_commit()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": commit,
        "git_dirty": dirty,
        "hostname": platform.node(),
    }


def new_document(suite: dict) -> dict:
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "suite": suite,
        "cells": [],
        "errors": [],
    }


def file_mode() -> int:
    """The mode a plain new file gets here (0666 less the umask): a temp file renamed into
    place would otherwise keep its 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write(doc: dict, path: str | Path) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, delete=False, prefix=f".{path.name}.", suffix=".tmp"
        ) as fh:
            json.dump(_clean(doc), fh, allow_nan=False)
        os.chmod(fh.name, file_mode())
        os.replace(fh.name, path)
    except OSError as err:
        raise ResultsError(
            f"cannot write results to {str(path)!r} ({err.strerror}); pass a writable path with -o"
        ) from None


def load_schema() -> dict:
    """The JSON Schema of the results format (package data)."""
    return json.loads(SCHEMA_FILE.read_text())


def _kind(value) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if JSON_TYPES[name](value):
            return name
    return type(value).__name__


def _simple_check(schema: dict):
    """A fast predicate for an item schema with only ``type`` and/or ``enum``."""
    if "enum" in schema:
        allowed = set(schema["enum"])
        return lambda v: isinstance(v, str | int | float | bool | None) and v in allowed
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    checks = [JSON_TYPES[t] for t in types]
    return lambda v: any(check(v) for check in checks)


def _python_types(schema: dict) -> set:
    """Python types that surely satisfy a ``type``-only item schema (empty with an enum)."""
    if "enum" in schema:
        return set()
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    table = {"number": {int, float}, "integer": {int}, "string": {str}, "null": {type(None)}}
    table["boolean"] = {bool}
    return set().union(*(table.get(t, set()) for t in types))


def schema_problems(doc, schema: dict, where: str = "") -> Iterator[str]:
    """Every place where ``doc`` breaks ``schema``, as 'field: what is wrong' (a small
    JSON Schema validator for the keywords in KEYWORDS; fields are named like
    cells[3].metrics.success_rate)."""
    name = where or "(document)"
    if "const" in schema and doc != schema["const"]:
        yield f"{name}: must be {schema['const']!r}, got {doc!r}"
        return
    if "enum" in schema and doc not in schema["enum"]:
        yield f"{name}: must be one of {', '.join(map(str, schema['enum']))}, got {doc!r}"
        return
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(JSON_TYPES[t](doc) for t in types):
            yield f"{name}: must be {' or '.join(types)}, got {_kind(doc)}"
            return
    if JSON_TYPES["number"](doc):
        if "minimum" in schema and doc < schema["minimum"]:
            yield f"{name}: must be >= {schema['minimum']}, got {doc}"
        if "maximum" in schema and doc > schema["maximum"]:
            yield f"{name}: must be <= {schema['maximum']}, got {doc}"
    if isinstance(doc, list):
        if len(doc) < schema.get("minItems", 0) or len(doc) > schema.get("maxItems", len(doc)):
            yield f"{name}: has {len(doc)} items, not the number expected"
        items = schema.get("items")
        if items is not None and set(items) <= {"type", "enum", "description"}:
            # per-seed arrays, thousands of values: one pass, the first bad value reported
            ok, fast = _simple_check(items), _python_types(items)
            bad = next(
                (i for i, item in enumerate(doc) if type(item) not in fast and not ok(item)),
                None,
            )
            if bad is not None:
                yield from schema_problems(doc[bad], items, f"{where}[{bad}]")
        elif items is not None:
            for i, item in enumerate(doc):
                yield from schema_problems(item, items, f"{where}[{i}]")
    if isinstance(doc, dict):
        for key in schema.get("required", []):
            if key not in doc:
                yield f"{where + '.' if where else ''}{key}: missing"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in doc.items():
            sub = props.get(key, extra)
            field = f"{where}.{key}" if where else key
            if sub is False:
                yield f"{field}: not a field of this format"
            elif isinstance(sub, dict):
                yield from schema_problems(value, sub, field)


def field_rows(schema: dict | None = None, where: str = "") -> list[tuple[str, str, str]]:
    """(field, type, meaning and unit) for every described field of the schema, in order:
    the README's field table is this list (tested), so the two cannot drift apart."""
    schema = load_schema() if schema is None else schema
    rows = []
    for key, sub in schema.get("properties", {}).items():
        field = f"{where}.{key}" if where else key
        kind = sub.get("type", "enum" if "enum" in sub else "const")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        if sub.get("description"):
            rows.append((field, kind, sub["description"]))
        items = sub.get("items", {})
        if isinstance(items, dict) and "properties" in items:
            rows += field_rows(items, f"{field}[]")
        elif "properties" in sub:
            rows += field_rows(sub, field)
    return rows


def validate(doc: dict, path: str | Path = "results") -> dict:
    """``doc`` if it follows the results schema, else ResultsError naming the first bad field."""
    problem = next(schema_problems(doc, load_schema()), None)
    if problem is not None:
        raise ResultsError(
            f"{str(path)!r} is not a valid results file: {problem}; rerun the suite or repair "
            "that field"
        )
    return doc


def read(path: str | Path) -> dict:
    """Read a results file; refuses other schemas and unknown versions with a clear message."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(
            f"results file {str(path)!r} not found; run `trapbench run` first or check the path"
        ) from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultsError(f"{str(path)!r} is not a readable results JSON file ({err})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ResultsError(f"{str(path)!r} is not a trapbench results file (no schema {SCHEMA!r})")
    if doc.get("version") != VERSION:
        raise ResultsError(
            f"{str(path)!r} has results version {doc.get('version')!r}; this trapbench reads "
            f"version {VERSION}: rerun it or use the trapbench release that wrote it"
        )
    return validate(doc, path)


def field_table() -> str:
    """The README's field table, in Markdown, from the schema (``python -m benchmarks.results``
    prints it; a test keeps the README's copy equal to it)."""
    lines = ["| field | type | meaning (unit) |", "|---|---|---|"]
    for field, kind, meaning in field_rows():
        escaped = meaning.replace("|", "\\|")
        lines.append(f"| `{field}` | {kind} | {escaped} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(field_table())
