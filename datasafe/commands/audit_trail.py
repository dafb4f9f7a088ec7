"""``audit``: the audit trail's records, and the check of its hash chain and HMACs."""

from __future__ import annotations

from typing import Any

from datasafe import audit
from datasafe.commands.repository import open_repository
from datasafe.config import LoadedConfig, load_policy_key
from datasafe.snapshot.repository import Repository


def audit_records(config: LoadedConfig, *, operation: str | None = None, limit: int | None = None,
                  repo: Repository | None = None) -> list[dict[str, Any]]:
    """The audit records, oldest first: only of ``operation`` (backup, restore, ...), the last ``limit``."""
    return audit.read((repo or open_repository(None, config)).storage, operation=operation, limit=limit)


def audit_verify(config: LoadedConfig, *, repo: Repository | None = None) -> audit.AuditReport:
    """Check the whole trail's hash chain and, with this configuration's policy key, every record's HMAC.
    Problems are in the report (its ``ok`` is False), not raised."""
    policy_key = load_policy_key(config)
    return audit.verify((repo or open_repository(None, config)).storage, policy_key.secret if policy_key else None)
