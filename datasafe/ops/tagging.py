"""``datasafe tag``: add or remove a snapshot's tags after it was taken.

Tags live in the manifest (``tags``; for an encrypted snapshot in its sealed manifest and its
public header alike), where they are covered by everything that authenticates a manifest: the
self-digest, the provenance HMAC under the policy key and, for an encrypted snapshot, the
authenticated encryption of the sealed manifest, which the header is compared with. Changing
them therefore rewrites the manifest as a backup writes it, and keeps it exactly as
authenticated as it was:

- signed with this host's policy key: checked first (an edited manifest is refused, exit 6),
  then signed again with the new tags;
- not signed: written unsigned. Signing it now would vouch for a manifest this host never
  checked (someone who can write the storage could have written it, claiming to be masked);
- signed with another key: refused (exit 3). Only that key can sign it again.

A tag change holds the source's lease, as backup, prune and forget do, and reads the manifest
again under it, so two tag changes of one snapshot never lose each other's tags. An encrypted
snapshot is sealed again with its own key, which needs an identity that opens it; the sealed
manifest is written first and the header last (a reader that meets the new sealed manifest with
the old header reads the header again: :meth:`Repository.open`).

Under S3 Object Lock, writing the manifest makes a new version of the object, locked like any
object datasafe writes; the previous version stays, locked until its own date, as the record of
the tags before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from datasafe.errors import ConfigError, IntegrityError, UsageError
from datasafe.ops.lease import Lease
from datasafe.ops.nightly import LockSettings
from datasafe.snapshot import provenance
from datasafe.snapshot.manifest import MANIFEST_NAME, SEALED_NAME, Manifest
from datasafe.snapshot.repository import Repository
from datasafe.transfer.backup import check_tags

log = logging.getLogger(__name__)


@dataclass
class TagChange:
    """The tags of one snapshot before and after a change (``dry_run``: after is what it would be)."""

    source: str
    snapshot_id: str
    before: list[str]
    after: list[str]
    dry_run: bool = False
    #: the snapshot's provenance, which the change keeps (see the module's docstring)
    provenance: str = "unsigned"
    requested: dict[str, list[str]] = field(default_factory=dict)

    @property
    def added(self) -> list[str]:
        return [t for t in self.after if t not in self.before]

    @property
    def removed(self) -> list[str]:
        return [t for t in self.before if t not in self.after]

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "snapshot": self.snapshot_id, "dry_run": self.dry_run,
                "changed": self.changed, "tags_before": self.before, "tags": self.after,
                "added": self.added, "removed": self.removed, "provenance": self.provenance}


def new_tags(current: list[str], add: list[str], remove: list[str]) -> list[str]:
    """``current`` less ``remove``, then ``add`` appended in the order given (no duplicates)."""
    out = [t for t in current if t not in remove]
    out += [t for i, t in enumerate(add) if t not in out and t not in add[:i]]
    return out


def tag_plan(repo: Repository, ref: str, *, add: list[str], remove: list[str],
             source: str | None = None) -> TagChange:
    """What ``datasafe tag`` would do, checked without writing anything.

    Raises:
        UsageError: nothing to add or remove, or a tag both added and removed.
        ConfigError: an invalid tag; the manifest is signed with a key this host does not hold;
            an encrypted snapshot no identity opens.
        IntegrityError: the manifest was edited since it was signed.
        NotFound: ``ref`` names no snapshot.
    """
    if not add and not remove:
        raise UsageError("nothing to do: give --add TAG or --remove TAG")
    both = sorted(set(add) & set(remove))
    if both:
        raise UsageError(f"tag {both[0]!r} is both added and removed")
    check_tags(add)
    manifest = repo.resolve(ref, source)
    state = _rewritable(repo, manifest)
    return TagChange(manifest.source, manifest.snapshot_id, list(manifest.tags),
                     new_tags(manifest.tags, add, remove), dry_run=True, provenance=state,
                     requested={"add": list(add), "remove": list(remove)})


def _rewritable(repo: Repository, manifest: Manifest) -> str:
    """The manifest's provenance status, if this host can write it again keeping that status."""
    state = provenance.status(manifest, repo.policy_key)  # IntegrityError: edited after it was signed
    if state in ("other-key", "no-key"):
        key = (manifest.provenance or {}).get("key_id")
        raise ConfigError(f"snapshot {manifest.snapshot_id} of {manifest.source} is signed with policy key {key}, "
                          "which this host does not hold: its tags can only be changed where that key is",
                          hint="run datasafe tag with DATASAFE_POLICY_KEY_FILE naming that key")
    return state


def retag(repo: Repository, plan: TagChange, *, lease: Lease | None = None) -> TagChange:
    """Apply the change ``plan`` asked for to the manifest as it is now (read again here, under
    ``lease``, so a concurrent change is not lost), write it, and read it back."""
    add, remove = plan.requested.get("add", []), plan.requested.get("remove", [])
    manifest = repo.open(repo.load_manifest(plan.source, plan.snapshot_id))
    state = _rewritable(repo, manifest)
    result = TagChange(plan.source, plan.snapshot_id, list(manifest.tags), new_tags(manifest.tags, add, remove),
                       provenance=state, requested=plan.requested)
    if not result.changed:
        return result
    if lease is not None:
        lease.check()  # never write after losing the source's lock
    manifest.tags = result.after
    if state == "authenticated":
        assert repo.policy_key is not None  # "authenticated" means it verified under this key
        provenance.sign(manifest, repo.policy_key)
    prefix = f"{manifest.source}/{manifest.snapshot_id}"
    log.info("changing the tags of snapshot %s of %s: %s -> %s", manifest.snapshot_id, manifest.source,
             ", ".join(result.before) or "none", ", ".join(result.after) or "none")
    if manifest.encrypted:
        if manifest._cipher is None:
            raise IntegrityError(f"snapshot {prefix}: its key was not opened")
        sealed = manifest._cipher.seal(manifest.to_json())
        repo.storage.write_bytes(f"{prefix}/{SEALED_NAME}", sealed)
        repo.storage.write_bytes(f"{prefix}/{MANIFEST_NAME}", manifest.header_json(sealed))
    else:
        repo.storage.write_bytes(f"{prefix}/{MANIFEST_NAME}", manifest.to_json())
    stored = repo.open(repo.load_manifest(plan.source, plan.snapshot_id))
    if stored.tags != result.after or provenance.status(stored, repo.policy_key) != state:
        raise IntegrityError(f"snapshot {prefix}: the rewritten manifest does not read back as written")
    return result


def tag_job(repo: Repository, plan: TagChange, *, dry_run: bool, lock: LockSettings) -> TagChange:
    """Change the tags ``plan`` names; a real run holds the source's lease (a dry run only reads)."""
    if dry_run:
        return plan
    with Lease(repo.storage, plan.source, operation="tag", ttl=lock.ttl).acquire(lock.wait) as lease:
        return retag(repo, plan, lease=lease)
