"""Keyed derivations: every masked value comes from HMAC-SHA256(key, value).

Only the secret key and the input value (and, for alternatives, the attempt number) enter the
HMAC: not the table or column name. The same key and value therefore mask to the same output in
every table, run and engine, which keeps foreign keys joinable and lets the pipeline apply a
parent column's rule to the columns that reference it.

``attempt > 0`` asks for an alternative output (to resolve a collision in a unique column): the
message becomes ``value + "\\0" + str(attempt)``.
"""

from __future__ import annotations

import hmac
import random


def message(value: str, attempt: int = 0) -> bytes:
    """The bytes the HMAC is taken over."""
    return value.encode() if attempt == 0 else f"{value}\0{attempt}".encode()


def digest(key: bytes, value: str, attempt: int = 0) -> bytes:
    """HMAC-SHA256(key, value[, attempt]) as 32 bytes."""
    return hmac.digest(key, message(value, attempt), "sha256")


def hexdigest(key: bytes, value: str, attempt: int = 0) -> str:
    """:func:`digest` as 64 lower-case hex digits."""
    return digest(key, value, attempt).hex()


def seed(key: bytes, value: str, attempt: int = 0) -> int:
    """A 64-bit seed: the first eight bytes of :func:`digest`, big-endian."""
    return int.from_bytes(digest(key, value, attempt)[:8], "big")


def keyed_random(key: bytes, value: str, attempt: int = 0) -> random.Random:
    """A ``random.Random`` seeded with :func:`seed`.

    Python keeps the integer seeding and ``getrandbits``/``randrange``/``random``/``choice`` stable
    across versions, so outputs built from it do not change with the interpreter.
    """
    return random.Random(seed(key, value, attempt))


def reseed(rng: random.Random, key: bytes, value: str, attempt: int = 0) -> random.Random:
    """Re-seed an existing generator (cheaper than building one per value) and return it."""
    rng.seed(seed(key, value, attempt))
    return rng
