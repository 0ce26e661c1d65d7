"""The report for machines: the snapshot itself, as canonical JSON (sorted keys, UTF-8). Its
SHA-256 is the digest printed in the other formats and kept with the report, so anyone can check
that a copy is the report Vigie made. The schema is `vigie-report`, version 1 (see data.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inventory.services.reports import encode_snapshot


def render_json(snapshot: Mapping[str, Any]) -> bytes:
    return encode_snapshot(dict(snapshot))
