"""``key generate`` and ``key show``: age identities for encrypted snapshots."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from datasafe.errors import ConfigError, Refused
from datasafe.snapshot.crypto import fingerprint, generate_identity, load_identities


@dataclass
class Recipient:
    """The public side of an identity: what ``encryption.recipients`` lists."""

    recipient: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.recipient)

    def as_dict(self) -> dict[str, str]:
        return {"recipient": self.recipient, "fingerprint": self.fingerprint}


def generate_key(output: Path) -> Recipient:
    """Create an X25519 identity file at ``output`` (mode 0600; it must not exist yet)."""
    identity, recipient = generate_identity()
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise Refused(f"{output} already exists: not overwriting a key") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {output}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"# datasafe identity; public recipient: {recipient}\n{identity}\n")
    return Recipient(recipient)


def show_key(identity_file: Path) -> list[Recipient]:
    """The public recipient of each identity in ``identity_file``."""
    return [Recipient(str(i.to_public())) for i in load_identities(identity_file)]
