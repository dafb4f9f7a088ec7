"""``rules init``, ``rules check`` and ``transformers``: writing and checking masking rules files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasafe.commands.repository import open_repository
from datasafe.config import LoadedConfig
from datasafe.errors import ConfigError, UsageError
from datasafe.masking.ddl import check_schema
from datasafe.masking.plan import check_rules
from datasafe.masking.propose import rules_init as propose
from datasafe.masking.reference import transformer_info, transformer_names
from datasafe.masking.rules import Rules, load_rules
from datasafe.masking.rules_yaml import did_you_mean
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.urls import DatabaseURL


def rules_init(config: LoadedConfig, subject: str, *, source: str | None = None, rows: int = 1000,
               output: Path | None = None, repo: Repository | None = None) -> str:
    """A starter rules file for a snapshot or a database URL (``subject``), from a scan of it.

    With ``output``, it is also written there (a file that must not exist yet)."""
    if "://" in subject:
        text = propose(DatabaseURL.parse(subject), rows=rows)
    else:
        repo = repo or open_repository(None, config)
        text = propose(repo.resolve(subject, source), repo, rows=rows)
    if output is not None:
        try:
            with output.open("x", encoding="utf-8") as fh:
                fh.write(text)
        except FileExistsError:
            raise ConfigError(f"{output} already exists: not overwriting it") from None
    return text


@dataclass
class RulesCheck:
    """A rules file that loaded, and the snapshot it was checked against (None: the file only)."""

    rules: Rules
    snapshot: Manifest | None = None


def rules_check(config: LoadedConfig, rules_file: Path, *, snapshot: str | None = None, source: str | None = None,
                repo: Repository | None = None) -> RulesCheck:
    """Load ``rules_file`` (the first problem raises, naming file, line and key); with ``snapshot``,
    also check coverage, columns, transformer fit and the schema's own text against it."""
    rules = load_rules(rules_file)
    if not snapshot:
        return RulesCheck(rules)
    repo = repo or open_repository(None, config)
    manifest = repo.resolve(snapshot, source)
    check_rules(manifest, rules)
    check_schema(manifest, repo.snapshot_storage(manifest), rules, strict=rules.strict)
    return RulesCheck(rules, manifest)


def transformers(name: str | None = None) -> list[dict[str, Any]]:
    """The masking transformers (each as :func:`~datasafe.masking.reference.transformer_info` says),
    or only the one called ``name``."""
    names = transformer_names()
    if name is None:
        return [transformer_info(n) for n in names]
    if name not in names:
        raise UsageError(f"no transformer {name!r}{did_you_mean(name, names)}",
                         hint="datasafe transformers lists them all")
    return [transformer_info(name)]
