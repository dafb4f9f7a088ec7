"""The policy decides by database identity, in the library, before the first write.

Every case here was a way production data reached a development database: another spelling of
the same server, a misleading storage name, an unconfigured target, a Python caller, a check
that came after the work, an edited manifest.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from datasafe.commands.repository import open_repository
from datasafe.commands.restore import restore as restore_snapshot
from datasafe.config import Config, LoadedConfig, load_config, resolve_source
from datasafe.demo import create_shop
from datasafe.errors import ExitCode, IntegrityError, Refused
from datasafe.snapshot.manifest import DIGEST_FIELD, _digest
from datasafe.transfer.backup import backup as take_backup
from tests.test_masking_pipeline import PG_RULES, PG_SCHEMA, SHOP_RULES
from tests.test_pg_faults import assert_fails, run_cli

KEY = "da0715e6cf4473fd59b45ec439ac3e8d7a13700de7c39d6a"


def audit_records(storage: Path) -> list[dict[str, Any]]:
    folder = storage / ".audit"
    return [json.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def refused_restores(storage: Path) -> list[dict[str, Any]]:
    return [r for r in audit_records(storage) if r["operation"] == "restore" and r["outcome"] == "refused"]


def snapshot_dirs(storage: Path) -> set[str]:
    return {str(p.relative_to(storage)) for p in storage.glob("*/*") if p.is_dir() and not p.name.startswith(".")}


# -- PostgreSQL: every spelling of the development database ---------------------------------------------
@pytest.fixture
def pg_policy(tmp_path: Path, storage_dir: Path, pg: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("DATASAFE_MASKING_KEY", KEY)
    prod = pg.create("dspol_prod", PG_SCHEMA)
    dev = pg.create("dspol_dev")
    (tmp_path / "rules.yml").write_text(PG_RULES)
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(json.dumps({
        "sources": {"prod": {"url": str(prod)}},
        "environments": {"dev": {"url": str(dev), "class": "development", "source": "prod", "rules": "rules.yml"},
                         "live": {"url": str(prod), "class": "production"}},
    }))
    backup = run_cli(storage_dir, "backup", "prod", config=cfg)
    assert backup.exit_code == 0, backup.output
    return {"cfg": cfg, "prod": prod, "dev": dev}


def _tables(url: Any) -> int:
    from tests.test_pg_roundtrip import query_all

    return int(query_all(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0])


def _pg_spellings(name: str) -> dict[str, tuple[str, dict[str, str]]]:
    return {
        "hostname": (f"postgresql://postgres@{socket.gethostname()}:5432/{name}", {}),
        "0.0.0.0": (f"postgresql://postgres@0.0.0.0:5432/{name}", {}),
        "127.1": (f"postgresql://postgres@127.1/{name}", {}),
        "integer address": (f"postgresql://postgres@2130706433:5432/{name}", {}),
        "multi-host": (f"postgresql://postgres@nonexist.invalid,127.0.0.1/{name}", {}),
        "hostaddr": (f"postgresql://postgres@db.invalid/{name}?hostaddr=127.0.0.1", {}),
        "PGHOSTADDR": (f"postgresql://postgres@db.invalid/{name}", {"PGHOSTADDR": "127.0.0.1"}),
        "[::1]": (f"postgresql://postgres@[::1]:5432/{name}", {}),
        "case": (f"POSTGRES://postgres@LocalHost:5432/{name}", {}),
        "trailing slash": (f"postgresql://postgres@127.0.0.1:5432/{name}/", {}),
        "no host": (f"postgresql:///{name}?host=127.0.0.1", {}),
        "other user": (f"postgresql://dspol_other@127.0.0.1:5432/{name}", {}),
    }


SPELLINGS = list(_pg_spellings("x"))


@pytest.mark.postgres
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_postgres_every_spelling_of_dev_is_refused(spelling: str, pg_policy: dict[str, Any], storage_dir: Path,
                                                   pg: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = pg_policy["dev"]
    url, env = _pg_spellings(dev.database)[spelling]
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    if spelling == "other user":
        from datasafe.engines.postgres.connection import connect

        with connect(pg.server, database="postgres") as conn:
            conn.execute("DROP ROLE IF EXISTS dspol_other")
            conn.execute("CREATE ROLE dspol_other LOGIN CREATEDB")
    try:
        before = len(refused_restores(storage_dir))
        result = run_cli(storage_dir, "restore", "latest", "--source", "prod", "--target", url, "--clean",
                         config=pg_policy["cfg"])
        assert_fails(result, ExitCode.REFUSED)
        assert _tables(dev) == 0  # nothing reached the development database
        records = refused_restores(storage_dir)
        assert len(records) == before + 1
        assert records[-1]["decision"]["data_class"] == "production"
        # the same spellings cannot replace production without --confirm either
        prod_url = url.replace(dev.database, pg_policy["prod"].database)
        over = run_cli(storage_dir, "restore", "latest", "--source", "prod", "--target", prod_url, "--clean",
                       config=pg_policy["cfg"])
        assert_fails(over, ExitCode.REFUSED)
        assert _tables(pg_policy["prod"]) == 3
        assert len(refused_restores(storage_dir)) == before + 2
    finally:
        if spelling == "other user":
            from datasafe.engines.postgres.connection import connect

            with connect(pg.server, database="postgres") as conn:
                conn.execute("DROP ROLE IF EXISTS dspol_other")


@pytest.mark.postgres
def test_postgres_spelling_is_matched_to_its_environment(pg_policy: dict[str, Any], storage_dir: Path) -> None:
    """Refused as the dev environment, by identity: the audit record names it."""
    url = f"postgresql://postgres@127.1/{pg_policy['dev'].database}"
    result = run_cli(storage_dir, "restore", "latest", "--source", "prod", "--target", url, config=pg_policy["cfg"])
    assert_fails(result, ExitCode.REFUSED, "development environment 'dev'")
    decision = refused_restores(storage_dir)[-1]["decision"]
    assert decision["environment"] == "dev" and decision["target_class"] == "development"
    assert decision["target_identity"]["server"].startswith("pg:")
    assert decision["origin"] == json.loads(
        run_cli(storage_dir, "show", "latest", "--source", "prod", "--json").stdout)["origin"]


@pytest.mark.postgres
def test_postgres_masked_refresh_passes_and_readonly_role_backs_up(pg_policy: dict[str, Any], storage_dir: Path,
                                                                   pg: Any, tmp_path: Path) -> None:
    from datasafe.engines.postgres.connection import connect

    done = run_cli(storage_dir, "refresh", "dev", config=pg_policy["cfg"])
    assert done.exit_code == 0, done.output
    assert _tables(pg_policy["dev"]) == 3
    role = "dspol_reader"
    with connect(pg.server, database="postgres") as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE pg_read_all_data")
    try:
        url = pg_policy["prod"].replace(username=role)
        ro = run_cli(storage_dir, "backup", str(url), "--name", "prod-ro")
        assert ro.exit_code == 0, ro.output
        shown = json.loads(run_cli(storage_dir, "show", "latest", "--source", "prod-ro", "--json").stdout)
        first = json.loads(run_cli(storage_dir, "show", "latest", "--source", "prod", "--json").stdout)
        assert shown["origin"] == first["origin"]  # same database, whichever role read it
    finally:
        with connect(pg.server, database="postgres") as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


# -- MariaDB ---------------------------------------------------------------------------------------
@pytest.mark.mysql
def test_mariadb_spellings_of_dev_are_refused(tmp_path: Path, storage_dir: Path, my: Any) -> None:
    prod = my.create("dspol_prod", "CREATE TABLE people (id int PRIMARY KEY, email varchar(60))",
                     "INSERT INTO people VALUES (1, 'ann@corp.example.com'), (2, 'bob@corp.example.com')")
    dev = my.create("dspol_dev")
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(json.dumps({"sources": {"prod": {"url": str(prod)}},
                               "environments": {"dev": {"url": str(dev), "class": "development"}}}))
    assert run_cli(storage_dir, "backup", "prod", config=cfg).exit_code == 0
    name = dev.database
    for url in (f"mysql://root@localhost/{name}", f"mysql://root@127.1/{name}", f"mariadb://root@0.0.0.0:3306/{name}",
                f"mysql://root@2130706433/{name}", f"MySQL://root@LOCALHOST:3306/{name}",
                f"mysql://root@{socket.gethostname()}/{name}", f"mysql://root@127.0.0.1:3306/{name}/"):
        result = run_cli(storage_dir, "restore", "latest", "--source", "prod", "--target", url, config=cfg)
        assert_fails(result, ExitCode.REFUSED)
        assert my.query(dev, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()") \
            == [(0,)], url
    assert len(refused_restores(storage_dir)) == 7


# -- SQLite: symlinks, relative paths, hard links -------------------------------------------------------
@pytest.fixture
def lite(tmp_path: Path, storage_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("DATASAFE_MASKING_KEY", KEY)
    prod = tmp_path / "prod.db"
    create_shop(prod, 120)
    dev = tmp_path / "envs" / "dev.db"
    dev.parent.mkdir()
    dev.write_bytes(b"")
    (tmp_path / "shop-rules.yml").write_text(SHOP_RULES)
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(json.dumps({
        "chunk_size": "64KiB",
        "sources": {"shop": {"url": f"sqlite:///{prod}"},
                    "fixtures": {"url": f"sqlite:///{tmp_path / 'fixtures.db'}", "class": "testing"}},
        "environments": {"dev": {"url": f"sqlite:///{dev}", "class": "development", "source": "shop",
                                 "rules": "shop-rules.yml"},
                         "lab": {"url": f"sqlite:///{tmp_path / 'lab.db'}", "class": "development",
                                 "allow_unmasked": True}},
    }))
    create_shop(tmp_path / "fixtures.db", 20)
    assert run_cli(storage_dir, "backup", "shop", config=cfg).exit_code == 0
    return {"cfg": cfg, "prod": prod, "dev": dev, "tmp": tmp_path}


def test_sqlite_other_paths_to_dev_are_refused(lite: dict[str, Any], storage_dir: Path) -> None:
    tmp, dev = lite["tmp"], lite["dev"]
    (tmp / "link.db").symlink_to(dev)
    (tmp / "dirlink").symlink_to(dev.parent)
    os.link(dev, tmp / "hard.db")
    for url in ("sqlite:///envs/dev.db", "sqlite:///./envs/../envs/dev.db", f"sqlite:///{tmp / 'link.db'}",
                f"sqlite:///{tmp / 'dirlink' / 'dev.db'}", f"sqlite:///{tmp / 'hard.db'}", f"sqlite:///{dev}"):
        result = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", url, "--clean",
                         config=lite["cfg"])
        assert_fails(result, ExitCode.REFUSED, "production data")
        assert dev.stat().st_size == 0, url
    assert len(refused_restores(storage_dir)) == 6


def test_sqlite_symlink_to_the_source_needs_confirm(lite: dict[str, Any], storage_dir: Path) -> None:
    (lite["tmp"] / "alias.db").symlink_to(lite["prod"])
    result = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target",
                     f"sqlite:///{lite['tmp'] / 'alias.db'}", "--clean", config=lite["cfg"])
    assert_fails(result, ExitCode.REFUSED, "was taken from")


# -- point 2: the class follows the data, not the storage name -------------------------------------------
def test_storage_name_of_a_testing_source_does_not_launder_production(lite: dict[str, Any], storage_dir: Path
                                                                      ) -> None:
    stored = run_cli(storage_dir, "backup", f"sqlite:///{lite['prod']}", "--name", "fixtures", config=lite["cfg"])
    assert stored.exit_code == 0, stored.output
    result = run_cli(storage_dir, "restore", "latest", "--source", "fixtures", "--target", "dev", config=lite["cfg"])
    assert_fails(result, ExitCode.REFUSED, "production data")
    assert lite["dev"].stat().st_size == 0
    # the real testing source's snapshots do go into dev
    real = run_cli(storage_dir, "backup", "fixtures", config=lite["cfg"])
    assert real.exit_code == 0
    ok = run_cli(storage_dir, "restore", real.stdout.strip(), "--target", "dev", "--clean", config=lite["cfg"])
    assert ok.exit_code == 0, ok.output


# -- point 3: unconfigured targets ------------------------------------------------------------------------
def test_unconfigured_target_needs_confirm_with_its_name(lite: dict[str, Any], storage_dir: Path) -> None:
    target = lite["tmp"] / "elsewhere.db"
    refused = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", f"sqlite:///{target}",
                      config=lite["cfg"])
    assert_fails(refused, ExitCode.REFUSED, "no configured environment", "--confirm elsewhere.db")
    assert not target.exists()
    wrong = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", f"sqlite:///{target}",
                    "--confirm", "dev", config=lite["cfg"])
    assert_fails(wrong, ExitCode.REFUSED)
    assert not target.exists()
    ok = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", f"sqlite:///{target}",
                 "--confirm", "elsewhere.db", config=lite["cfg"])
    assert ok.exit_code == 0, ok.output
    done = [r for r in audit_records(storage_dir) if r["operation"] == "restore" and r["outcome"] == "ok"][-1]
    assert done["decision"]["confirmed"] == "elsewhere.db"
    assert done["decision"]["data_class"] == "production"


# -- point 4: the library enforces it ---------------------------------------------------------------------
def test_python_api_refuses_without_the_cli(lite: dict[str, Any], storage_dir: Path) -> None:
    cfg = load_config(str(lite["cfg"]))
    repo = open_repository(str(storage_dir), config=cfg)
    with pytest.raises(Refused, match="development environment 'dev'"):
        restore_snapshot(cfg, "latest", "dev", source="shop", repo=repo)
    with pytest.raises(Refused, match="no configured environment"):
        restore_snapshot(LoadedConfig(Config(), None), "latest", f"sqlite:///{lite['tmp'] / 'x.db'}",  # no config
                         source="shop", repo=repo)
    assert lite["dev"].stat().st_size == 0 and not (lite["tmp"] / "x.db").exists()
    manifest = take_backup(resolve_source(cfg, "shop"), repo)
    assert manifest.origin is not None and manifest.origin["engine"] == "sqlite"


# -- point 5: everything is checked before the work -------------------------------------------------------
def test_non_strict_refresh_is_refused_before_masking(lite: dict[str, Any], storage_dir: Path) -> None:
    rules = lite["tmp"] / "shop-rules.yml"
    rules.write_text(SHOP_RULES.replace("version: 1\n", "version: 1\nstrict: false\n")
                     .replace("      iban: iban\n", ""))
    dry = run_cli(storage_dir, "refresh", "dev", "--dry-run", config=lite["cfg"])
    assert_fails(dry, ExitCode.REFUSED, "strict coverage turned off")
    before = snapshot_dirs(storage_dir)
    real = run_cli(storage_dir, "refresh", "dev", config=lite["cfg"])
    assert_fails(real, ExitCode.REFUSED, "strict coverage turned off")
    assert snapshot_dirs(storage_dir) == before  # no non-strict masked snapshot was stored
    assert lite["dev"].stat().st_size == 0


def test_mask_with_target_checks_policy_before_masking(lite: dict[str, Any], storage_dir: Path) -> None:
    before = snapshot_dirs(storage_dir)
    result = run_cli(storage_dir, "mask", "latest", "--source", "shop", "--rules", str(lite["tmp"] / "shop-rules.yml"),
                     "--no-strict", "--target", "dev", config=lite["cfg"])
    assert_fails(result, ExitCode.REFUSED, "strict coverage turned off")
    assert snapshot_dirs(storage_dir) == before


# -- point 6: --random-key means random ---------------------------------------------------------------------
def test_random_key_is_random_even_with_a_configured_key(lite: dict[str, Any], storage_dir: Path) -> None:
    rules = str(lite["tmp"] / "shop-rules.yml")
    keyed = run_cli(storage_dir, "mask", "latest", "--source", "shop", "--rules", rules, config=lite["cfg"])
    rand = run_cli(storage_dir, "--log-format", "human", "mask", "latest", "--source", "shop", "--rules", rules,
                   "--random-key", config=lite["cfg"])
    assert keyed.exit_code == 0 and rand.exit_code == 0, rand.output
    assert "--random-key: the configured masking key" in rand.stderr
    shown = [json.loads(run_cli(storage_dir, "show", r.stdout.strip(), "--json").stdout) for r in (keyed, rand)]
    assert shown[0]["masking"]["key_id"] != shown[1]["masking"]["key_id"]
    digests = [{t["name"]: t["content_blake3"] for t in s["tables"]} for s in shown]
    assert digests[0]["customers"] != digests[1]["customers"]
    both = run_cli(storage_dir, "mask", "latest", "--source", "shop", "--rules", rules, "--random-key",
                   "--key-file", rules, config=lite["cfg"])
    assert_fails(both, ExitCode.CONFIG, "exclude each other")


# -- point 7: overrides and confirmations are audited as such -------------------------------------------
def test_override_is_recorded_as_an_override(lite: dict[str, Any], storage_dir: Path) -> None:
    result = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", "lab", config=lite["cfg"])
    assert result.exit_code == 0, result.output
    record = [r for r in audit_records(storage_dir) if r["operation"] == "restore"][-1]
    assert record["outcome"] == "ok"
    assert "POLICY OVERRIDE" in record["decision"]["override"]
    verified = run_cli(storage_dir, "audit", "--verify")
    assert verified.exit_code == 0, verified.output


# -- point 8: an edited manifest is not believed -----------------------------------------------------------
def _rewrite_manifest(storage: Path, source: str, edit: Any) -> None:
    [path] = list((storage / source).glob("*/manifest.json"))
    body = json.loads(path.read_bytes())
    body.pop(DIGEST_FIELD)
    edit(body)
    body[DIGEST_FIELD] = _digest(body)  # anyone with write access to the storage can do this
    path.write_text(json.dumps(body))


def test_manifest_edited_to_claim_masked_is_refused(lite: dict[str, Any], storage_dir: Path) -> None:
    fake = run_cli(storage_dir, "backup", "shop", "--name", "shop.fake", config=lite["cfg"])
    assert fake.exit_code == 0

    def claim(body: dict[str, Any]) -> None:
        body["masking"] = {"masked": True, "strict": True, "rules_sha256": "0" * 64, "key_id": "0" * 16}

    _rewrite_manifest(storage_dir, "shop.fake", claim)
    edited = run_cli(storage_dir, "restore", "latest", "--source", "shop.fake", "--target", "dev", config=lite["cfg"])
    assert_fails(edited, ExitCode.INTEGRITY, "provenance", "edited")
    _rewrite_manifest(storage_dir, "shop.fake", lambda b: b.pop("provenance"))
    stripped = run_cli(storage_dir, "restore", "latest", "--source", "shop.fake", "--target", "dev",
                       config=lite["cfg"])
    assert_fails(stripped, ExitCode.REFUSED, "not authenticated")
    assert lite["dev"].stat().st_size == 0
    cfg = load_config(str(lite["cfg"]))
    repo = open_repository(str(storage_dir), config=cfg)
    assert repo.policy_key is not None

    def forge(body: dict[str, Any]) -> None:  # a made-up hmac under this host's key id
        claim(body)
        body["provenance"] = {"key_id": repo.policy_key.key_id if repo.policy_key else "", "hmac": "0" * 64}

    _rewrite_manifest(storage_dir, "shop.fake", forge)
    with pytest.raises(IntegrityError, match="provenance"):
        restore_snapshot(cfg, "latest", "dev", source="shop.fake", repo=repo)
    assert lite["dev"].stat().st_size == 0


def test_genuinely_masked_snapshot_goes_to_dev(lite: dict[str, Any], storage_dir: Path) -> None:
    done = run_cli(storage_dir, "refresh", "dev", config=lite["cfg"])
    assert done.exit_code == 0, done.output
    record = [r for r in audit_records(storage_dir) if r["operation"] == "refresh"][-1]
    assert record["outcome"] == "ok" and record["decision"]["data_class"] == "masked"
    assert record["decision"]["provenance"] == "authenticated"


# -- verify --deep copies data too -----------------------------------------------------------------------
@pytest.mark.postgres
def test_deep_verify_of_production_data_only_on_a_production_server(tmp_path: Path, storage_dir: Path, pg: Any
                                                                     ) -> None:
    """The scratch database of verify --deep holds the snapshot's rows for a while: production data
    gets one only on the origin's server or a configured production database's server."""
    from datasafe.snapshot import provenance

    prod = pg.create("dspol_vprod", PG_SCHEMA)
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(json.dumps({"sources": {"prod": {"url": str(prod)}}}))
    assert run_cli(storage_dir, "backup", "prod", config=cfg).exit_code == 0
    ok = run_cli(storage_dir, "verify", "latest", "--deep", config=cfg)
    assert ok.exit_code == 0, ok.output
    # a snapshot that came from another server (written and signed as datasafe would on that host)
    repo = open_repository(str(storage_dir), config=load_config(str(cfg)))
    assert repo.policy_key is not None
    [path] = list((storage_dir / "prod").glob("*/manifest.json"))
    manifest = repo.resolve("latest", "prod")
    manifest.origin = {**(manifest.origin or {}), "server": "pg:1"}
    provenance.sign(manifest, repo.policy_key)
    path.write_bytes(manifest.to_json())
    unknown = tmp_path / "none.yml"
    unknown.write_text("{}")
    far = run_cli(storage_dir, "verify", "latest", "--deep", config=unknown)
    assert_fails(far, ExitCode.REFUSED, "not a production server")
    assert ok.exit_code == 0
    # the server of a configured production source is fine
    near = run_cli(storage_dir, "verify", "latest", "--deep", config=cfg)
    assert near.exit_code == 0, near.output
