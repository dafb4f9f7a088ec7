"""Opening the repository at a storage location: the storage backend of the location's scheme, with
that scheme's settings, and the policy key that signs and authenticates manifests."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from datasafe.policykey import PolicyKey
from datasafe.snapshot.repository import Repository
from datasafe.storage import open_storage


def open_repository(location: str, storage_settings: Mapping[str, BaseModel] | None = None, *,
                    policy_key: PolicyKey | None = None) -> Repository:
    """The snapshots stored at a storage URL or path.

    Args:
        location: a path, ``file://`` URL or ``s3://bucket/prefix`` URL.
        storage_settings: the configuration's storage settings by scheme
            (:attr:`datasafe.config.Config.storage_settings`); None: every backend's defaults.
        policy_key: signs new manifests and audit records and authenticates what the policy reads
            (:func:`datasafe.config.load_policy_key`); None: nothing is signed or authenticated.
    """
    return Repository(open_storage(location, storage_settings), policy_key=policy_key)
