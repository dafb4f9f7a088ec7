"""``demo``: the whole cycle on a generated SQLite shop (:mod:`datasafe.demo`), no server needed:
create, back up, verify, restore, compare, mask."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from datasafe.commands.repository import open_repository
from datasafe.commands.restore import restore
from datasafe.commands.verify import scratch_check
from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.demo import create_shop
from datasafe.engines import get_engine
from datasafe.masking.masked_snapshot import mask as mask_snapshot
from datasafe.masking.masked_snapshot import rules_init
from datasafe.masking.masking_key import load_key
from datasafe.masking.rules import load_rules
from datasafe.progress import Progress
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.transfer.backup import backup
from datasafe.transfer.verify import verify as verify_snapshot
from datasafe.urls import DatabaseURL


def demo(workdir: Path, *, customers: int = 2000, progress: Progress | None = None) -> dict[str, Any]:
    """Create, back up, verify, restore and compare; returns what happened."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "shop.db"
    restored = workdir / "shop-restored.db"
    storage = workdir / "backups"
    counts = create_shop(db, customers)
    config = LoadedConfig(Config(), None)
    repo = open_repository(str(storage), config)
    source = resolve_source(config, f"sqlite:///{db.absolute()}", "shop")
    manifest = backup(source, repo, tags=["demo"], progress=progress)
    report = verify_snapshot(repo, manifest, progress=progress, check_scratch=scratch_check(config, repo))
    restored.unlink(missing_ok=True)
    # an unconfigured target: the demo's (generated) data counts as production, so say which file
    restore(config, manifest.snapshot_id, f"sqlite:///{restored.absolute()}", confirm=restored.name, repo=repo,
            progress=progress)
    engine = get_engine("sqlite")
    digests = dict(engine.table_digests(DatabaseURL.parse(f"sqlite:///{restored.absolute()}"), manifest))
    identical = all(digests.get(t.name) == t.content_blake3 for t in manifest.tables)
    masking = _mask_step(config, repo, manifest, db, workdir, progress)
    st = f"--storage {storage}"
    return {
        "database": str(db),
        "source_tables": counts,
        "snapshot": manifest.snapshot_id,
        "storage": str(storage),
        "raw_bytes": manifest.raw_size,
        "stored_bytes": manifest.stored_size,
        "verify": report.as_dict(),
        "restored": str(restored),
        "identical": identical,
        "masking": masking,
        "next": [
            f"datasafe list {st}",
            # 'latest' is shop's newest: shop.masked is only a masked copy of it
            f"datasafe show latest {st}",
            f"datasafe verify latest --deep {st}",
            f"datasafe restore latest --target sqlite:///{workdir}/copy.db --confirm copy.db --dry-run {st}",
            f"datasafe mask latest --rules {masking['rules']} --random-key --dry-run {st}",
        ],
    }


#: the example rules for this database, when datasafe runs from a source checkout
DEMO_RULES = Path(__file__).resolve().parents[2] / "masking_rules" / "demo.yml"


def _mask_step(config: LoadedConfig, repo: Repository, manifest: Manifest, db: Path, workdir: Path,
               progress: Progress | None) -> dict[str, Any]:
    """Mask the demo snapshot, restore the masked copy and check that nothing real is left in it."""
    rules_path = DEMO_RULES
    if not rules_path.is_file():  # an installed package: start from the suggested rules
        rules_path = workdir / "demo-rules.yml"
        rules_path.write_text(rules_init(manifest), encoding="utf-8")
    rules = load_rules(rules_path)
    key = load_key(rules, allow_random=True)
    result = mask_snapshot(repo, manifest, rules_path, key, tags=["demo"], progress=progress)
    masked = result.manifest
    assert masked is not None
    target = workdir / "shop-masked.db"
    target.unlink(missing_ok=True)
    restore(config, masked.snapshot_id, f"sqlite:///{target.absolute()}", source=masked.source, repo=repo,
            progress=progress)
    join = "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id"
    columns = "id, first_name, last_name, email, phone"
    with sqlite3.connect(db) as before, sqlite3.connect(target) as after:
        real = {r[0] for r in before.execute("SELECT email FROM customers")}
        leaked = sum(1 for r in after.execute("SELECT email FROM customers") if r[0] in real)
        joins = (before.execute(join).fetchone()[0], after.execute(join).fetchone()[0])
        sample = [{"before": list(b), "after": list(a)} for b, a in zip(
            before.execute(f"SELECT {columns} FROM customers ORDER BY id LIMIT 3"),
            after.execute(f"SELECT {columns} FROM customers ORDER BY id LIMIT 3"), strict=True)]
    return {"snapshot": masked.snapshot_id, "source": masked.source, "rules": str(rules_path),
            "key": "random per-run key" if key.is_random else f"key {key.key_id}", "restored": str(target),
            "real_emails_left": leaked, "joins": {"before": joins[0], "after": joins[1]}, "sample": sample}
