"""The row encoding of SQLite snapshots: one JSON array per row."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from datasafe.engines.codec import Cell, RowCodec
from datasafe.errors import IntegrityError


class JsonLines(RowCodec):
    """One JSON array per row; values keep their SQLite storage class."""

    encoding = "jsonl"

    def split(self, line: bytes) -> list[Any]:
        row = json.loads(line)
        if not isinstance(row, list):
            raise IntegrityError("a jsonl row is not a JSON array")
        return row

    def decode(self, field: Any) -> Cell:
        if field is None:
            return None
        if isinstance(field, dict):  # blob
            return str(field.get("$b", ""))
        if isinstance(field, float) and field.is_integer() and abs(field) < 1e16:
            return repr(field)
        return field if isinstance(field, str) else str(field)

    def encode(self, cell: Cell, original: Any) -> Any:
        if cell is None:
            return None
        if isinstance(original, bool) or original is None or isinstance(original, str):
            return cell
        if isinstance(original, int):
            try:
                return int(cell)
            except ValueError:
                return cell
        if isinstance(original, float):
            try:
                return float(cell)
            except ValueError:
                return cell
        if isinstance(original, dict):
            return {"$b": cell}
        return cell

    def join(self, fields: Sequence[Any]) -> bytes:
        return json.dumps(list(fields), ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
