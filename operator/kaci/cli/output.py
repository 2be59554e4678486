"""Rendering results as a table, YAML or JSON (pure: data in, text out)."""

from __future__ import annotations

import io
import json
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "yaml", "json")
Columns = list[tuple[str, str]]  # (header, key in the serialized dict)

MODEL_COLUMNS: Columns = [
    ("NAME", "name"),
    ("VERSION", "version"),
    ("FRAMEWORK", "framework"),
    ("DIGEST", "digest"),
    ("TAGS", "tags"),
    ("CREATED", "createdTime"),
]
IMAGE_COLUMNS: Columns = [
    ("NAME", "name"),
    ("VERSION", "version"),
    ("STATE", "creationState"),
    ("MODELS", "modelIds"),
    ("LOCATION", "imageLocation"),
]
WEBSERVICE_COLUMNS: Columns = [
    ("NAME", "name"),
    ("STATE", "state"),
    ("CPU", "cpuCores"),
    ("MEMORY_GB", "memoryGb"),
    ("AUTH", "authEnabled"),
    ("IMAGE", "imageId"),
    ("SCORING_URI", "scoringUri"),
]


def cell(value: Any) -> str:
    """A compact text form of one value for a table cell."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return ",".join(cell(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    if text.startswith("sha256:") and len(text) > 19:
        return text[:19]
    return text


def render(data: dict[str, Any] | list[dict[str, Any]], columns: Columns, fmt: str) -> str:
    """Text for `data` (one object or a list) in `fmt`; tables get one row per object."""
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=True, default=str)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=True, default_flow_style=False).rstrip("\n")
    if fmt != "table":
        raise ValueError(f"unknown output format {fmt!r}: use one of {', '.join(FORMATS)}")
    rows = data if isinstance(data, list) else [data]
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for header, _ in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(cell(row.get(key)) for _, key in columns))
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None, highlight=False).print(table)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines())


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str] | None:
    """`k=v` options into a dict (None when none were given)."""
    if not pairs:
        return None
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} {p!r}: expected key=value")
        out[key] = value
    return out


def parse_ref(text: str) -> tuple[str, int | None]:
    """`name` or `name:version`."""
    name, sep, version = text.rpartition(":")
    if not sep:
        return text, None
    if not version.isdigit() or not name:
        raise ValueError(f"{text!r}: expected NAME or NAME:VERSION")
    return name, int(version)
