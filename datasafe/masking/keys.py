"""The masking key: where it comes from, and the id that names it without revealing it.

The key never appears in a rules file, a log line, an error message or a manifest; a manifest
records only :attr:`MaskingKey.key_id`, so two masked copies can be compared for "same key"
without the key.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from datasafe.masking.errors import RulesError

if TYPE_CHECKING:
    from datasafe.masking.rules import Rules

log = logging.getLogger(__name__)

DEFAULT_KEY_ENV = "DATASAFE_MASKING_KEY"
MIN_KEY_LENGTH = 16
NO_KEY = (f"no masking key: set {DEFAULT_KEY_ENV} or key_file (or pass --random-key for a throwaway run)")


def key_id(secret: bytes) -> str:
    """16 hex digits of HMAC-SHA256(secret, "datasafe-key-id"): names the key, reveals nothing of it."""
    return hmac.digest(secret, b"datasafe-key-id", "sha256").hex()[:16]


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


def load_key(rules: Rules | None, *, key_file: str | os.PathLike[str] | None = None,
             env: Mapping[str, str] | None = None, allow_random: bool = False, random: bool = False) -> MaskingKey:
    """Find the masking key.

    Order: ``key_file`` given here; else the rules' ``key_file`` (relative to the rules file);
    else the environment variable the rules name in ``key_env`` (default ``DATASAFE_MASKING_KEY``);
    else, with ``allow_random``, a new random key for a throwaway run.

    ``random`` (``--random-key``) always means a new random key: a configured key is then not
    used, and a warning says so; an explicit ``key_file`` together with it is an error.

    A key from the environment is any string of at least 16 characters (its UTF-8 bytes); a key
    file holds at least 16 bytes, a trailing newline is not part of the key.

    Raises:
        RulesError: no key, a key that is too short, or a key file that cannot be read. The
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
        if len(value) < MIN_KEY_LENGTH:
            raise RulesError(f"the masking key in {name} is too short ({len(value)} characters; at least "
                             f"{MIN_KEY_LENGTH})", hint="generate one with: openssl rand -hex 32")
        return MaskingKey.from_secret(value.encode(), f"env:{name}")
    if allow_random:
        return MaskingKey.from_secret(secrets.token_bytes(32), "random")
    message = NO_KEY if name == DEFAULT_KEY_ENV else NO_KEY.replace(DEFAULT_KEY_ENV, name)
    raise RulesError(message, hint="generate a key with: openssl rand -hex 32")


def _from_file(path: Path) -> MaskingKey:
    try:
        secret = path.read_bytes()
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
    return MaskingKey.from_secret(secret, f"file:{path}")
