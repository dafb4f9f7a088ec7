"""Keyed derivations: every masked value comes from HMAC-SHA256(key, value).

Only the secret key and the input value (and, for alternatives, the attempt number) enter the
HMAC: not the table or column name. The same key and value therefore mask to the same output in
every table, run and engine, which keeps foreign keys joinable and lets the pipeline apply a
parent column's rule to the columns that reference it.

``attempt > 0`` asks for an alternative output (to resolve a collision in a unique column): the
message becomes ``value + "\\0" + str(attempt)``.

A transformer takes one HMAC per (value, attempt) and derives everything it draws from those 32
bytes (:class:`Draws`, which extends them with SHAKE-256 when a value needs more).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from functools import lru_cache

_BLOCK = 64  # SHA-256 block size: the HMAC key is padded to it
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))

#: HMAC-SHA256 under one key: (value, attempt) -> 32 bytes
DigestFunc = Callable[[str, int], bytes]


def message(value: str, attempt: int = 0) -> bytes:
    """The bytes the HMAC is taken over."""
    return value.encode() if attempt == 0 else f"{value}\0{attempt}".encode()


@lru_cache(maxsize=64)
def hmac_states(key: bytes) -> tuple[Callable[[], hashlib._Hash], Callable[[], hashlib._Hash]]:
    """Copiers of the SHA-256 states after the key's inner and outer HMAC pads.

    HMAC-SHA256(key, msg) = SHA-256(outer pad + SHA-256(inner pad + msg)): with both states kept,
    a digest costs two copies and two small updates instead of hashing the pads every time.
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(padded.translate(_IPAD)).copy, hashlib.sha256(padded.translate(_OPAD)).copy


@lru_cache(maxsize=64)
def hmac_sha256(key: bytes) -> DigestFunc:
    """HMAC-SHA256 under ``key`` as a function of (value, attempt): ``digest(key, value, attempt)``."""
    inner_copy, outer_copy = hmac_states(key)

    def digest(value: str, attempt: int = 0) -> bytes:
        inner = inner_copy()
        inner.update(value.encode() if attempt == 0 else f"{value}\0{attempt}".encode())
        outer = outer_copy()
        outer.update(inner.digest())
        return outer.digest()

    return digest


def digest(key: bytes, value: str, attempt: int = 0) -> bytes:
    """HMAC-SHA256(key, value[, attempt]) as 32 bytes."""
    return hmac_sha256(key)(value, attempt)


def hexdigest(key: bytes, value: str, attempt: int = 0) -> str:
    """:func:`digest` as 64 lower-case hex digits."""
    return digest(key, value, attempt).hex()


def seed(key: bytes, value: str, attempt: int = 0) -> int:
    """A 64-bit seed: the first eight bytes of :func:`digest`, big-endian."""
    return int.from_bytes(digest(key, value, attempt)[:8], "big")


def keyed_random(key: bytes, value: str, attempt: int = 0) -> random.Random:
    """A ``random.Random`` seeded with :func:`seed`.

    Python keeps the integer seeding and ``getrandbits``/``randrange``/``random``/``choice`` stable
    across versions, so outputs built from it do not change with the interpreter. Seeding one costs
    several microseconds: hot transformers draw from :class:`Draws` instead.
    """
    return random.Random(seed(key, value, attempt))


def reseed(rng: random.Random, key: bytes, value: str, attempt: int = 0) -> random.Random:
    """Re-seed an existing generator (cheaper than building one per value) and return it."""
    rng.seed(seed(key, value, attempt))
    return rng


class Draws:
    """Numbers drawn one after another from keyed bytes (usually a digest).

    Each draw takes the next ``width`` bytes as a big-endian integer and reduces it modulo the
    range; with at least 8 bytes per draw of a range below 2**32 the bias is below 2**-32. When
    the bytes run out, SHAKE-256 of them gives more. Plain arithmetic on bytes, so the results
    are the same on every Python version.
    """

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def below(self, n: int, width: int = 8) -> int:
        """A number in ``range(n)``."""
        pos = self._pos
        if pos + width > len(self._data):
            self._data = hashlib.shake_256(self._data).digest(max(64, width * 4))
            pos = 0
        self._pos = pos + width
        return int.from_bytes(self._data[pos:pos + width], "big") % n

    def digits(self, count: int) -> str:
        """``count`` decimal digits (leading zeros kept)."""
        if count <= 19:  # 10**19 < 2**64: 16 bytes per 19 digits keep the bias below 2**-64
            return f"{self.below(_POWERS[count], 16):0{count}d}" if count > 0 else ""
        return self.digits(19) + self.digits(count - 19)


_POWERS = [10**i for i in range(20)]
