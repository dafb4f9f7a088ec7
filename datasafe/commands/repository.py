"""The repository a command works on: the configured storage location, with the keys to read it."""

from __future__ import annotations

from datasafe.config import (
    Config,
    LoadedConfig,
    encryption_settings,
    keyring,
    load_policy_key,
    storage_location,
)
from datasafe.snapshot.location import open_repository as open_location
from datasafe.snapshot.repository import Repository


def open_repository(location: str | None = None, config: LoadedConfig | None = None, *,
                    identity: str | None = None, writing: bool = False) -> Repository:
    """The snapshots at ``location`` (a path, ``file://`` or ``s3://`` URL; default: the configured
    storage, as ``--storage`` is).

    The repository carries the policy key of ``config`` (see :mod:`datasafe.policykey`; the default
    key file is created on first use), which signs new manifests and audit records and
    authenticates what the policy reads; the keys for encrypted snapshots (``identity``:
    ``--identity``); and, ``writing``, the recipients new snapshots are encrypted to."""
    cfg = config or LoadedConfig(Config(), None)
    repo = open_location(storage_location(cfg, location), cfg.config.storage_settings,
                         policy_key=load_policy_key(cfg, create=True))
    repo.keyring = keyring(cfg, identity)
    if writing:
        repo.encryption = encryption_settings(cfg)
    return repo
