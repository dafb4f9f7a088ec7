"""``datasafe key``: make and inspect age keys for encrypted snapshots."""

from __future__ import annotations

from pathlib import Path

import click

from datasafe.cli.group import cli, global_options
from datasafe.cli.state import emit_json
from datasafe.commands.keys import Recipient, generate_key
from datasafe.commands.keys import show_key as recipients_of


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
    _print(generate_key(output), as_json)


@key.command("show")
@global_options(without=("identity", "storage", "config"))
@click.argument("identity_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print recipients and fingerprints as JSON.")
def show_key(identity_file: Path, as_json: bool) -> None:
    """Print the public recipient and fingerprint of each identity in IDENTITY_FILE."""
    recipients = recipients_of(identity_file)
    if as_json:
        emit_json([r.as_dict() for r in recipients])
        return
    for r in recipients:
        _print(r, False)


def _print(recipient: Recipient, as_json: bool) -> None:
    if as_json:
        emit_json(recipient.as_dict())
    else:
        click.echo(f"{recipient.recipient}  (fingerprint {recipient.fingerprint})")
