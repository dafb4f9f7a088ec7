"""``datasafe key``: make and inspect age keys for encrypted snapshots."""

from __future__ import annotations

import os
from pathlib import Path

import click

from datasafe.cli.main import _emit_json, cli, global_options
from datasafe.errors import ConfigError, Refused
from datasafe.snapshot.crypto import fingerprint, generate_identity, load_identities


@cli.group()
def key() -> None:
    """Make and inspect age keys for encrypted snapshots (see docs/security.md).

    \b
    The backup host needs only the public recipient (age1...) in datasafe.yml:
      encryption: {recipients: [age1...]}
    Keep the identity file on the restore side only.
    """


@key.command("generate")
@global_options(without=("identity", "storage", "config"))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Identity file to create (mode 0600); it must not exist yet.")
@click.option("--json", "as_json", is_flag=True, help="Print recipient and fingerprint as JSON.")
def generate(output: Path, as_json: bool) -> None:
    """Create an X25519 identity file and print its public recipient."""
    identity, recipient = generate_identity()
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise Refused(f"{output} already exists: not overwriting a key") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {output}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"# datasafe identity; public recipient: {recipient}\n{identity}\n")
    _print(recipient, as_json)


@key.command("show")
@global_options(without=("identity", "storage", "config"))
@click.argument("identity_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print recipients and fingerprints as JSON.")
def show_key(identity_file: Path, as_json: bool) -> None:
    """Print the public recipient and fingerprint of each identity in IDENTITY_FILE."""
    recipients = [str(i.to_public()) for i in load_identities(identity_file)]
    if as_json:
        _emit_json([{"recipient": r, "fingerprint": fingerprint(r)} for r in recipients])
        return
    for r in recipients:
        _print(r, False)


def _print(recipient: str, as_json: bool) -> None:
    if as_json:
        _emit_json({"recipient": recipient, "fingerprint": fingerprint(recipient)})
    else:
        click.echo(f"{recipient}  (fingerprint {fingerprint(recipient)})")
