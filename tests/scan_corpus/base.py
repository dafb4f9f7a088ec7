"""What every engine module of the corpus shares: a table's rows, and a content digest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclass
class Table:
    """The rows the generator writes into one table.

    ``columns`` are the columns the loader sets, in row order; generated columns and columns left
    to their DEFAULT are not among them (every column of the table is still in the labels).
    """

    name: str
    columns: list[str]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        assert len(values) == len(self.columns), (self.name, len(values), len(self.columns))
        self.rows.append(values)


def _canon(value: Any) -> Any:
    """One spelling per value, whichever driver returned it (for digests across engines and runs)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value.to_integral() else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in sorted(value.items())}
    return str(value)


def digest_rows(rows: Iterable[Sequence[Any]]) -> str:
    """SHA-256 over the canonical JSON of ``rows``, in the given order."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(_canon(list(row)), sort_keys=True, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def digest_tables(tables: Iterable[Table]) -> str:
    """Digest of generated tables: names, columns and rows."""
    return digest_rows([t.name, t.columns, digest_rows(t.rows)] for t in tables)
