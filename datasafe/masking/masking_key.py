"""The masking key: where it comes from, how strong it must be, and the id that names it.

Every masked value is HMAC-SHA256(key, value). Whoever holds the key can therefore test guesses
of an original value against its masked form, and a column with few possible values (a US social
security number has under 10^9) can be enumerated back: the key must stay secret and must not be
guessable. So a key is measured before use (:func:`estimate_bits`): one below
:data:`MIN_KEY_BITS` (short, repetitive, sequences, dictionary words) is refused. A memorable
secret is accepted as a *passphrase* (``passphrase:`` before it): it needs fewer bits
(:data:`MIN_PASSPHRASE_BITS`), because the key is derived from it with scrypt, so every guess costs
an attacker 64 MiB of memory and a noticeable fraction of a second.

The key never appears in a rules file, a log line, an error message or a manifest. A manifest
records only :attr:`MaskingKey.key_id`, which answers "was this copy masked with my key?" for
whoever holds the key, and nothing for whoever does not:

- ``pbkdf2-sha256$<iterations>$<salt>$<digest>``: PBKDF2-HMAC-SHA256 of the key with a random
  16-byte salt, new for every run, and :data:`ID_ITERATIONS` iterations. Checking a guess against
  it costs all those iterations (about 70 ms), and the salt makes each id a separate target: no
  table of precomputed ids helps. A 64-bit check value computed at HMAC speed (the old id) let
  anyone who can read a manifest test millions of guesses per second. (PBKDF2 rather than a
  memory-hard function: the key it protects already has at least :data:`MIN_KEY_BITS` bits, and a
  large buffer allocated and freed once would raise the allocator's mmap threshold for the rest
  of the run, which a masking run pays for in memory.)
- The price of the salt: two ids of the same key differ, so ids cannot be compared with each
  other. The only question datasafe asks of an id is "is it this key's?", answered by
  :meth:`MaskingKey.names`, which re-derives the digest with the stored salt. (The ids that are
  compared for equality, in ``datasafe.snapshot.provenance`` and the audit trail, are the *policy*
  key's: that key is 32 random bytes, which a 64-bit check value does not help to guess.)
- Manifests written before this scheme carry 16 hex digits of HMAC-SHA256(key, "datasafe-key-id");
  they stay readable, and :meth:`MaskingKey.names` recognizes them.

The cost is paid once per run, when the key is loaded, never per masked value.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from datasafe.masking.errors import RulesError

log = logging.getLogger(__name__)


class KeySettings(Protocol):
    """Where a rules file says its key is (:class:`datasafe.masking.rules.Rules` is one)."""

    @property
    def key_env(self) -> str | None:
        """The environment variable holding the key; None: ``$DATASAFE_MASKING_KEY``."""

    def key_path(self) -> Path | None:
        """The key file (relative paths resolved against the rules file); None when it is not set."""

DEFAULT_KEY_ENV = "DATASAFE_MASKING_KEY"
MIN_KEY_LENGTH = 16
#: the largest key read (a key file is read no further)
MAX_KEY_BYTES = 4096
#: estimated bits a key needs (``openssl rand -hex 16`` has 128; random text of 24 characters more)
MIN_KEY_BITS = 96
#: estimated bits a passphrase needs: its key comes out of scrypt, which makes each guess slow
MIN_PASSPHRASE_BITS = 64
#: a key that starts with this is a passphrase; the key is derived from the rest
PASSPHRASE_PREFIX = "passphrase:"
NO_KEY = (f"no masking key: set {DEFAULT_KEY_ENV} or key_file (or pass --random-key for a throwaway run)")
KEY_HINT = f"generate one with: openssl rand -hex 32 (or use '{PASSPHRASE_PREFIX}' and five or more random words)"

#: PBKDF2 iterations of a new key id: about 70 ms, once per run
ID_ITERATIONS = 200_000
#: an id asking for more iterations than this is not checked (a manifest could ask for years)
_MAX_ID_ITERATIONS = 10 * ID_ITERATIONS
#: scrypt of a passphrase: 64 MiB per guess; the salt is fixed so that a passphrase always gives
#: the same key (masking must be reproducible), and names this use so no other use shares it
_PASSPHRASE_SCRYPT = {"n": 1 << 16, "r": 8, "p": 1}
_PASSPHRASE_SALT = b"datasafe masking passphrase v1"
_ID_SALT_BYTES = 16
_SALTED_ID = re.compile(r"^pbkdf2-sha256\$([1-9][0-9]{0,8})\$([0-9a-f]{32})\$([0-9a-f]{32})$")
_LEGACY_ID = re.compile(r"^[0-9a-f]{16}$")


# -- how guessable a key is --------------------------------------------------------------------------

#: a run of letters in one case (``word``, ``Word``, ``WORD``) of 3 to 14 letters with vowels is
#: probably a word: worth no more than a pick from a list of about 2,000 words (11 bits; 8 for words
#: of three letters). Random letters seldom keep one case in a key that mixes cases.
_RUN = re.compile(r"[A-Za-z]+")
_ONE_CASE = re.compile(r"[a-z]{3,14}|[A-Z][a-z]{2,13}|[A-Z]{3,14}")
_VOWELS = frozenset("aeiouyAEIOUY")
_WORD_BITS, _SHORT_WORD_BITS = 11.0, 8.0
#: enough of a key to tell (the estimate takes time in the square of the length)
_ESTIMATED_BYTES = 256
_CLASSES = ((str.islower, 26), (str.isupper, 26), (str.isdigit, 10))


def estimate_bits(secret: bytes) -> float:
    """A deliberately pessimistic estimate of the guesses a key takes, in bits.

    Each character is worth the bits of a pick from the character classes the key uses
    (lowercase, uppercase, digits, punctuation, other), except that a stretch repeating an earlier
    one costs only the bits to point back at it, a character continuing a run or a sequence
    (``aaa``, ``abc``, ``321``) costs one bit, and a run of letters that looks like a word costs
    what a pick from a word list does. Bytes that are not UTF-8 text are worth 8 bits each.
    Random keys get about their real strength (hexadecimal somewhat more); keys people make up
    get less, as they should. It cannot see words run together (``correcthorse``): it is a guard
    against the obvious, not a proof of strength. The first 256 bytes are enough to tell.
    """
    head = secret[:_ESTIMATED_BYTES]
    try:
        text = head.decode("utf-8")
        pool = sum(size for test, size in _CLASSES if any(test(c) and c.isascii() for c in text))
        pool += 33 if any(c.isascii() and not c.isalnum() for c in text) else 0
        pool += 128 if any(not c.isascii() for c in text) else 0
    except UnicodeDecodeError:
        text, pool = head.decode("latin-1"), 256
    per_char = math.log2(max(pool, 2))
    bits, i, n = 0.0, 0, len(text)
    while i < n:
        length = _earlier_match(text, i)
        if length:
            bits += math.log2(i + 1) + math.log2(length)
            i += length
            continue
        run = _RUN.match(text, i) if pool < 256 and (i == 0 or not text[i - 1].isalpha()) else None
        if run is not None and _ONE_CASE.fullmatch(run.group()) and _VOWELS.intersection(run.group()):
            size = len(run.group())
            bits += min(size * per_char, _SHORT_WORD_BITS if size == 3 else _WORD_BITS)
            i = run.end()
            continue
        steps = (ord(text[i]) - ord(text[i - 1]), ord(text[i - 1]) - ord(text[i - 2])) if i >= 2 else (9, 9)
        bits += 1.0 if steps[0] == steps[1] and abs(steps[0]) <= 1 else per_char
        i += 1
    return bits


def _earlier_match(text: str, i: int) -> int:
    """The length of the longest stretch at ``i`` (three characters or more) that also starts earlier."""
    best = 0
    for start in range(i):
        length = 0
        while i + length < len(text) and text[start + length] == text[i + length]:
            length += 1
        best = max(best, length)
    return best if best >= 3 else 0


# -- the key id ---------------------------------------------------------------------------------------

def key_id(secret: bytes, salt: bytes | None = None, iterations: int = ID_ITERATIONS) -> str:
    """``pbkdf2-sha256$<iterations>$<salt>$<digest>``: names the key for whoever holds it (see
    the module docstring). A new random salt unless ``salt`` is given (to check an id, :func:`names_key`)."""
    salt = secrets.token_bytes(_ID_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", secret, b"datasafe-key-id\0" + salt, iterations, dklen=16)
    return f"pbkdf2-sha256${iterations}${salt.hex()}${digest.hex()}"


def legacy_key_id(secret: bytes) -> str:
    """The id of manifests written before salted ids: 16 hex digits of HMAC-SHA256(secret, "datasafe-key-id")."""
    return hmac.digest(secret, b"datasafe-key-id", "sha256").hex()[:16]


def names_key(stored_id: object, secret: bytes) -> bool:
    """Whether ``stored_id`` (from a manifest) is the id of ``secret``; any other value is not."""
    if not isinstance(stored_id, str):
        return False
    match = _SALTED_ID.match(stored_id)
    if match is not None:
        iterations = int(match.group(1))
        if iterations > _MAX_ID_ITERATIONS:
            return False
        return hmac.compare_digest(key_id(secret, bytes.fromhex(match.group(2)), iterations), stored_id)
    if _LEGACY_ID.match(stored_id):
        return hmac.compare_digest(legacy_key_id(secret), stored_id)
    return False


def is_key_id(value: object) -> bool:
    """Whether ``value`` has the form of a key id, salted or legacy."""
    return isinstance(value, str) and bool(_SALTED_ID.match(value) or _LEGACY_ID.match(value))


@dataclass(frozen=True)
class MaskingKey:
    """The secret key and its public id.

    Attributes:
        secret: the key bytes (HMAC key of every masked value); not shown by ``repr``.
        key_id: :func:`key_id` of the secret, safe to log and to store in manifests.
        source: where it came from: ``env:NAME``, ``file:PATH`` or ``random``.
    """

    secret: bytes = field(repr=False)
    key_id: str
    source: str

    @property
    def is_random(self) -> bool:
        """A throwaway key: masked outputs cannot be reproduced by a later run."""
        return self.source == "random"

    @classmethod
    def from_secret(cls, secret: bytes, source: str) -> MaskingKey:
        return cls(secret, key_id(secret), source)

    def names(self, stored_id: object) -> bool:
        """Whether a manifest's ``masking.key_id`` names this key (salted or legacy id)."""
        return names_key(stored_id, self.secret)


# -- where the key comes from -------------------------------------------------------------------------

def load_key(rules: KeySettings | None, *, key_file: str | os.PathLike[str] | None = None,
             env: Mapping[str, str] | None = None, allow_random: bool = False, random: bool = False) -> MaskingKey:
    """Find the masking key.

    Order: ``key_file`` given here; else the rules' ``key_file`` (relative to the rules file);
    else the environment variable the rules name in ``key_env`` (default ``DATASAFE_MASKING_KEY``);
    else, with ``allow_random``, a new random key for a throwaway run.

    ``random`` (``--random-key``) always means a new random key: a configured key is then not
    used, and a warning says so; an explicit ``key_file`` together with it is an error.

    A key is at least 16 characters (its UTF-8 bytes) or, in a file, 16 bytes (a trailing newline
    is not part of it), at most 4 KiB, and must be strong (:func:`estimate_bits`); one written
    ``passphrase:...`` is a passphrase the key is derived from. A key file that its group or other
    users can read is used, with a warning.

    Raises:
        RulesError: no key, a weak or too short key, or a key file that cannot be read. The
            message never contains the key.
    """
    env = os.environ if env is None else env
    if random:
        if key_file is not None:
            raise RulesError("--random-key and --key-file exclude each other: a random key is never read from a file")
        configured = rules.key_path() if rules is not None else None
        name = (rules.key_env if rules is not None else None) or DEFAULT_KEY_ENV
        if configured is not None or env.get(name):
            log.warning("--random-key: the configured masking key (%s) is not used; this run's output cannot be "
                        "linked to any other run", f"key_file {configured}" if configured else f"${name}")
        return MaskingKey.from_secret(secrets.token_bytes(32), "random")
    path = Path(key_file) if key_file is not None else rules.key_path() if rules is not None else None
    if path is not None:
        return _from_file(path)
    name = (rules.key_env if rules is not None else None) or DEFAULT_KEY_ENV
    value = env.get(name)
    if value:
        where = f"the masking key in {name}"
        if len(value) < MIN_KEY_LENGTH:
            raise RulesError(f"{where} is too short ({len(value)} characters; at least {MIN_KEY_LENGTH})",
                             hint=KEY_HINT)
        return _checked(value.encode("utf-8", "surrogateescape"), where, f"env:{name}")
    if allow_random:
        return MaskingKey.from_secret(secrets.token_bytes(32), "random")
    message = NO_KEY if name == DEFAULT_KEY_ENV else NO_KEY.replace(DEFAULT_KEY_ENV, name)
    raise RulesError(message, hint="generate a key with: openssl rand -hex 32")


def _from_file(path: Path) -> MaskingKey:
    try:
        with open(path, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            secret = fh.read(MAX_KEY_BYTES + 3)  # room for a line end after the largest key
    except FileNotFoundError:
        raise RulesError(f"masking key file {path} does not exist") from None
    except OSError as exc:
        raise RulesError(f"masking key file {path} cannot be read: {exc.strerror}") from None
    if secret.endswith(b"\r\n"):
        secret = secret[:-2]
    elif secret.endswith(b"\n"):
        secret = secret[:-1]
    if len(secret) < MIN_KEY_LENGTH:
        raise RulesError(f"masking key file {path} holds {len(secret)} bytes; a key has at least {MIN_KEY_LENGTH}",
                         hint="generate one with: openssl rand -hex 32 > " + str(path))
    if stat.S_ISREG(mode) and mode & 0o044:
        log.warning("masking key file %s can be read by %s (mode %04o): chmod 600 %s", path,
                    "other users" if mode & 0o004 else "its group", stat.S_IMODE(mode), path)
    return _checked(secret, f"masking key file {path}", f"file:{path}")


def _checked(secret: bytes, where: str, source: str) -> MaskingKey:
    """The key of ``secret`` once it is found strong enough, or derived from it as a passphrase."""
    if len(secret) > MAX_KEY_BYTES:
        raise RulesError(f"{where} is longer than {MAX_KEY_BYTES} bytes: a key is at most that")
    prefix = PASSPHRASE_PREFIX.encode()
    if secret.startswith(prefix):
        phrase = secret[len(prefix):]
        bits = estimate_bits(phrase)
        if bits < MIN_PASSPHRASE_BITS:
            raise RulesError(f"{where} holds a weak passphrase (about {bits:.0f} bits by datasafe's estimate; "
                             f"at least {MIN_PASSPHRASE_BITS}): use more words, chosen at random", hint=KEY_HINT)
        derived = hashlib.scrypt(phrase, salt=_PASSPHRASE_SALT, dklen=32, maxmem=1 << 27, **_PASSPHRASE_SCRYPT)
        return MaskingKey.from_secret(derived, source)
    bits = estimate_bits(secret)
    if bits < MIN_KEY_BITS:
        raise RulesError(f"{where} is too weak (about {bits:.0f} bits by datasafe's estimate; at least "
                         f"{MIN_KEY_BITS}): it is short, repetitive or made of words", hint=KEY_HINT)
    return MaskingKey.from_secret(secret, source)
