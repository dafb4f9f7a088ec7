"""Fixtures of the fault suite: a seeded storage per test, with its source database and targets.

Each engine's source database and three snapshots of it are made once per session (the seed);
every test gets its own copy of those snapshots in a fresh storage (a folder, a tmpfs, or an S3
bucket behind the faulty proxy of tests/s3server.py), its own targets, and removes them after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datasafe.storage.s3 import S3Settings
from datasafe.urls import DatabaseURL
from tests.faults import harness
from tests.faults.harness import KEY, World
from tests.faults.servers import OLD_CONTENT, Engine, MySQL, Postgres, SQLite
from tests.s3server import FaultyProxy, aws_env, drop_bucket, moto_endpoint, new_bucket  # noqa: F401  (fixtures)


@dataclass
class Seed:
    engine: Engine
    source: DatabaseURL
    folder: Path  # a local storage folder with the snapshots


def adapter(request: pytest.FixtureRequest, engine: str, folder: Path) -> Engine:
    if engine == "postgres":
        return Postgres(request.getfixturevalue("postgres_server"), folder)
    if engine == "mysql":
        return MySQL(request.getfixturevalue("mysql_server"), folder)
    return SQLite(None, folder)


def env_base(session_cache: Path) -> dict[str, str]:
    """What every datasafe process of the suite gets: the session's policy key and cache, a masking key."""
    return {"XDG_CONFIG_HOME": str(session_cache / "config"), "DATASAFE_CACHE_DIR": str(session_cache),
            "DATASAFE_MASKING_KEY": KEY}


@pytest.fixture(scope="session")
def seeds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          session_cache: Path) -> Iterator[Callable[[str], Seed]]:
    made: dict[str, Seed] = {}

    def get(engine: str) -> Seed:
        if engine not in made:
            folder = tmp_path_factory.mktemp(f"seed-{engine}")
            db = adapter(request, engine, folder)
            source = db.create("src", db.schema)
            world = World(db, "local", folder, str(folder / "repo"), source, db.url("dsflt_unused"),
                          env_base(session_cache))
            for _ in range(3):
                done = world.run("backup", "shop")
                assert done.returncode == 0, done.describe()
            made[engine] = Seed(db, source, folder / "repo")
        return made[engine]

    yield get
    for seed in made.values():
        seed.engine.drop_all()


@pytest.fixture
def make_world(request: pytest.FixtureRequest, seeds: Callable[[str], Seed], tmp_path: Path,
               session_cache: Path) -> Iterator[Callable[..., World]]:
    """``make_world(engine, storage="local", tmpfs=False, qa=False)``: a storage holding the seed
    snapshots, the engine's adapter for new targets and, with ``qa``, a refresh target with old content."""
    cleanup: list[Callable[[], None]] = []

    def make(engine: str, storage: str = "local", *, tmpfs: bool = False, qa: bool = False) -> World:
        seed = seeds(engine)
        targets = adapter(request, engine, tmp_path)
        cleanup.append(targets.drop_all)
        qa_url = targets.create("qa", OLD_CONTENT) if qa else targets.url(targets.new_name("qa"))
        proxy: FaultyProxy | None = None
        direct = mount = None
        if storage == "s3":
            request.getfixturevalue("aws_env")
            endpoint = request.getfixturevalue("moto_endpoint")
            bucket = new_bucket(endpoint)
            proxy = FaultyProxy(endpoint).start()
            cleanup.append(lambda: drop_bucket(endpoint, bucket))
            cleanup.append(proxy.stop)
            direct = S3Settings(endpoint_url=endpoint, addressing_style="path")
            url = f"s3://{bucket}/repo?endpoint_url={proxy.url}&addressing_style=path&max_attempts=3"
        elif tmpfs:
            mount = tmp_path / "mnt"
            if not harness.mount_tmpfs(mount, "24m"):
                pytest.skip("cannot mount a tmpfs here (needs root)")
            cleanup.append(lambda: harness.umount(tmp_path / "mnt"))
            url = str(mount / "repo")
        else:
            url = str(tmp_path / "repo")
        world = World(targets, storage, tmp_path, url, seed.source, qa_url, env_base(session_cache), proxy, direct,
                      mount)
        harness.copy_seed(seed.folder, world)
        return world

    yield make
    for step in reversed(cleanup):
        step()
