"""A labelled corpus that measures ``datasafe scan``: three databases with planted personal data.

One schema + data generator per engine (deterministic from a seed; fake people from Faker,
identifiers with valid checksums, nothing real):

- :mod:`.postgresql` — pagila-shaped store, an ``hr`` schema, users / events (jsonb) / exports.
- :mod:`.mysql` — a web shop, HR, users, an audit log with JSON payloads, support notes.
- :mod:`.sqlite` — chinook-shaped media store, users, events (JSON in TEXT), tickets, files.

``labels/<engine>.yaml`` says for every column whether it holds personal data (and which
category), and which schema objects carry planted personal data in their text; :mod:`.score`
reads them and scores a ``datasafe scan --json`` report; :mod:`.pipeline` builds the databases,
snapshots and scans them (what ``scripts/bench/scan_corpus.py`` and the tests run).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

#: engines of the corpus, in the order they are built and printed
ENGINES = ("postgresql", "mysql", "sqlite")
#: the seed the bench script and the tests use unless told otherwise
DEFAULT_SEED = 20240630
HERE = Path(__file__).resolve().parent


def engine_module(engine: str) -> ModuleType:
    """The generator module of ``engine`` (``generate``, ``create``, ``columns``, ``digest``)."""
    if engine == "postgresql":
        from tests.scan_corpus import postgresql as mod
    elif engine == "mysql":
        from tests.scan_corpus import mysql as mod
    elif engine == "sqlite":
        from tests.scan_corpus import sqlite as mod
    else:
        raise ValueError(f"unknown engine {engine!r} (expected one of {', '.join(ENGINES)})")
    return mod
