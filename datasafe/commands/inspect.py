"""``scan`` and ``leaks``: what personal data a snapshot or database holds, and what a masked copy still holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasafe.commands.repository import open_repository
from datasafe.config import LoadedConfig
from datasafe.errors import ConfigError
from datasafe.masking.leaks_compare import audit_snapshots, audit_urls
from datasafe.masking.leaks_report import LeakReport
from datasafe.masking.rules import load_rules
from datasafe.scan.api import scan_snapshot, scan_url
from datasafe.scan.model import ScanReport
from datasafe.snapshot.repository import Repository
from datasafe.urls import DatabaseURL


def scan(config: LoadedConfig, subject: str, *, source: str | None = None, rows: int = 1000,
         tables: list[str] | None = None, repo: Repository | None = None) -> ScanReport:
    """Find the columns, JSON paths and schema texts of ``subject`` (a snapshot or a database URL)
    that hold personal data; a URL is only read (catalog and a bounded sample)."""
    if "://" in subject:
        return scan_url(DatabaseURL.parse(subject), rows=rows, tables=tables)
    repo = repo or open_repository(None, config)
    return scan_snapshot(repo, repo.resolve(subject, source), rows=rows, tables=tables)


def leaks(config: LoadedConfig, original: str, masked: str, *, source: str | None = None,
          masked_source: str | None = None, columns: list[str] | None = None, rules_path: Path | None = None,
          sample: int | None = None, quasi: list[tuple[str, list[str]]] | None = None, k: int = 5,
          repo: Repository | None = None) -> LeakReport:
    """Look for values of ``original``'s columns anywhere in ``masked`` (two snapshots, or two
    database URLs). The report says whether it passed; nothing is raised for a leak."""
    rules = load_rules(rules_path) if rules_path is not None else None
    options: dict[str, Any] = {"columns": columns, "rules": rules, "sample": sample, "quasi": list(quasi or []),
                               "k": k}
    urls = ["://" in original, "://" in masked]
    if any(urls):
        if not all(urls):
            raise ConfigError("give two snapshots or two database URLs, not one of each")
        return audit_urls(original, masked, **options)
    repo = repo or open_repository(None, config)
    return audit_snapshots(repo, original, masked, source=source,
                           masked_source=masked_source or (f"{source}.masked" if source else None), **options)
