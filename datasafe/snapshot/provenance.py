"""Authenticated provenance: a manifest's HMAC under the policy key.

The manifest's self-digest (``manifest_sha256``) catches damage, but anyone who can write the
storage can recompute it. What the policy believes — the origin, the masking block, strict
coverage, the masking key's id, and with them every other byte of the manifest — is therefore
also covered by an HMAC under the policy key (:mod:`datasafe.policykey`), which the storage does
not hold. A manifest whose HMAC does not verify is refused; one without an HMAC, or signed with
another key, is not believed when it claims to be masked.
"""

from __future__ import annotations

import json
from typing import Literal

from datasafe.errors import IntegrityError
from datasafe.policykey import PolicyKey
from datasafe.snapshot.manifest import DIGEST_FIELD, Manifest

Status = Literal["authenticated", "unsigned", "other-key", "no-key"]


def _body(manifest: Manifest) -> bytes:
    body = manifest.model_dump(mode="json")
    body.pop("provenance", None)
    body.pop(DIGEST_FIELD, None)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(manifest: Manifest, key: PolicyKey) -> None:
    """Set ``manifest.provenance`` to its HMAC under ``key`` (done at commit, after every other field)."""
    manifest.provenance = None
    manifest.provenance = {"key_id": key.key_id, "hmac": key.sign(_body(manifest))}


def status(manifest: Manifest, key: PolicyKey | None) -> Status:
    """Whether ``manifest`` is authenticated by ``key``.

    Raises:
        IntegrityError: it was signed with this key and changed since (an edited manifest).
    """
    prov = manifest.provenance
    if not isinstance(prov, dict) or not isinstance(prov.get("hmac"), str):
        return "unsigned"
    if key is None:
        return "no-key"
    if prov.get("key_id") != key.key_id:
        return "other-key"
    if not key.verifies(_body(manifest), prov["hmac"]):
        raise IntegrityError(f"manifest of snapshot {manifest.snapshot_id} of {manifest.source} fails its "
                             "provenance check: it was edited after it was written",
                             hint="restore from another snapshot; see docs/security.md")
    return "authenticated"


def describe(state: Status, manifest: Manifest) -> str:
    key = (manifest.provenance or {}).get("key_id")
    return {
        "authenticated": f"authenticated (policy key {key})",
        "unsigned": "not authenticated (written without a policy key)",
        "other-key": f"not authenticated (signed with policy key {key}, not this host's)",
        "no-key": f"not authenticated (signed with policy key {key}; this host has no policy key)",
    }[state]
