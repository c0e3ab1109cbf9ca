"""Output as kubectl prints it: aligned columns under upper-case headers, or JSON or YAML; colour
(READY and SYNCED) only on a terminal, and never with NO_COLOR set."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

import yaml

COLOURS = {"True": "\033[32m", "False": "\033[31m", "Unknown": "\033[33m", "missing": "\033[31m"}
RESET = "\033[0m"


def colour_on(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def table(headers: list[str], rows: list[list[str]], stream: TextIO = sys.stdout) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    paint = colour_on(stream)
    for row in [headers, *rows]:
        cells = []
        for i, cell in enumerate(row):
            text = str(cell).ljust(widths[i]) if i < len(row) - 1 else str(cell)
            if paint and row is not headers and str(cell) in COLOURS:
                text = f"{COLOURS[str(cell)]}{text}{RESET}"
            cells.append(text)
        stream.write("   ".join(cells).rstrip() + "\n")


def structured(value: Any, output: str, stream: TextIO = sys.stdout) -> None:
    if output == "json":
        stream.write(json.dumps(value, indent=2) + "\n")
    else:
        stream.write(yaml.safe_dump(value, sort_keys=False))


def money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"
