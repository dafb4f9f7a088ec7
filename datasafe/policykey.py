"""The policy key: authenticates what the policy believes, with a secret the storage does not hold.

Manifests (their origin, masking block, strict flag and key id, in fact every byte of them)
and audit records carry an HMAC-SHA256 under this key. Someone who can write the storage but
does not hold the key can delete or replace objects, but cannot make an edited manifest claim
``masked``, nor forge an audit record, without it being noticed (see docs/security.md).

Where it comes from, in order: ``$DATASAFE_POLICY_KEY_FILE``; ``policy.key_file`` in
datasafe.yml (relative to that file); ``$XDG_CONFIG_HOME/datasafe/policy.key`` (default
``~/.config/datasafe/policy.key``), created on first use by a command that writes snapshots.
A key file readable by group or others is refused.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from datasafe.errors import ConfigError

POLICY_KEY_ENV = "DATASAFE_POLICY_KEY_FILE"
MIN_KEY_BYTES = 16


def key_id(secret: bytes) -> str:
    """16 hex digits that name the key without revealing it."""
    return hmac.digest(secret, b"datasafe-policy-key-id", "sha256").hex()[:16]


@dataclass(frozen=True)
class PolicyKey:
    secret: bytes = field(repr=False)
    key_id: str
    path: Path | None = None

    @classmethod
    def from_secret(cls, secret: bytes, path: Path | None = None) -> PolicyKey:
        if len(secret) < MIN_KEY_BYTES:
            raise ConfigError(f"policy key{f' file {path}' if path else ''} holds {len(secret)} bytes; "
                              f"a key has at least {MIN_KEY_BYTES}")
        return cls(secret, key_id(secret), path)

    def sign(self, data: bytes) -> str:
        return hmac.new(self.secret, data, "sha256").hexdigest()

    def verifies(self, data: bytes, mac: str) -> bool:
        return hmac.compare_digest(self.sign(data), mac)


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "datasafe" / "policy.key"


def key_path(configured: Path | None = None) -> tuple[Path, bool]:
    """Where the key is, and whether that is the default place (which may be created).

    Args:
        configured: ``policy.key_file`` of the configuration, already resolved against the
            configuration file's folder; None when it is not set.
    """
    env = os.environ.get(POLICY_KEY_ENV)
    if env:
        return Path(env).expanduser(), False
    if configured is not None:
        return configured, False
    return default_path(), True


def read_policy_key(configured: Path | None = None, *, create: bool = False) -> PolicyKey | None:
    """The policy key; None when there is none (nothing is then authenticated).

    ``configured`` is the configuration's ``policy.key_file`` (see :func:`key_path`). With
    ``create``, a missing key at the default place is created (0600). A key named by
    ``$DATASAFE_POLICY_KEY_FILE`` or ``policy.key_file`` must exist.
    """
    path, is_default = key_path(configured)
    if not path.exists():
        if not is_default:
            raise ConfigError(f"policy key file {path} does not exist",
                              hint=f"create one with: umask 077; openssl rand -hex 32 > {path}")
        if not create:
            return None
        _create(path)
    return _read(path)


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first
    except OSError as exc:
        raise ConfigError(f"cannot create the policy key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")


def _read(path: Path) -> PolicyKey:
    try:
        st = path.stat()
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"policy key file {path} is readable by group or others (mode "
                              f"{stat.S_IMODE(st.st_mode):o})", hint=f"chmod 600 {path}")
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"policy key file {path} cannot be read: {exc.strerror}") from None
    return PolicyKey.from_secret(secret, path)
