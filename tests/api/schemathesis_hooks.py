"""Loaded by schemathesis (`hooks` in schemathesis.toml): bodies it cannot serialise alone.

Bulk routes take JSON Lines (`application/jsonl`): a generated array becomes one JSON value a
line, anything else one line, so the fuzzer reaches those routes' per-line checks."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/jsonl")
def json_lines(_context: Any, value: Any) -> bytes:
    items = value if isinstance(value, list) else [value]
    return "\n".join(json.dumps(item, ensure_ascii=False) for item in items).encode()
