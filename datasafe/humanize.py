"""Numbers for people: counts with thousands separators and the right noun, sizes, ages.

Every human-readable line datasafe writes (command output, log lines, plan steps, errors) uses
these, so a row count reads ``85,100 rows`` whichever engine or command printed it. JSON output
keeps plain numbers.
"""

from __future__ import annotations

from datetime import timedelta

#: nouns whose plural is not noun + "s"
_IRREGULAR = {"entry": "entries", "index": "indexes", "match": "matches"}


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 table``, ``2 tables``, ``85,100 rows``."""
    word = noun if n == 1 else plural or _IRREGULAR.get(noun) or f"{noun}s"
    return f"{n:,} {word}"


def size(n: float) -> str:
    """Bytes in binary units: ``512 B``, ``246.8 KiB``, ``1.9 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def age(td: timedelta) -> str:
    """How long ago, in at most two units, rounded down: ``45s``, ``35m``, ``5h``, ``5h12m``, ``2d``, ``2d3h``."""
    seconds = max(0, int(td.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    parts: list[str] = []
    for unit, length in (("d", 86_400), ("h", 3600), ("m", 60)):
        n, seconds = divmod(seconds, length)
        if n or parts:
            parts.append(f"{n}{unit}" if n else "")
        if len(parts) == 2:
            break
    return "".join(parts)
