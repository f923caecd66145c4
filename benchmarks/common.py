"""Shared output of benchmarks: one JSON line on stdout, and the same JSON in ``--out`` if given."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, out: Path | None) -> dict:
    print(json.dumps(result))
    if out:
        out.write_text(json.dumps(result, indent=2))
    return result
