"""Which configured database a URL or a snapshot's origin is: matched by identity, asked once per run.

Every configured source and environment is a database with a class. The policy never compares
URL text: it asks each server who it is (:meth:`~datasafe.engines.base.Engine.identity`) and
compares the answers. Answers are cached for the run; a server that cannot be reached is
remembered as such, and the policy decides what that means (see :mod:`.policy`).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from datasafe.config import LoadedConfig
from datasafe.engines import get_engine
from datasafe.environments import CLASSES, environments
from datasafe.errors import ConfigError, DatasafeError
from datasafe.identity import DatabaseIdentity
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: most restrictive first
RANK = {c: i for i, c in enumerate(CLASSES)}


@dataclass(frozen=True)
class Known:
    """A configured database: ``kind`` source or environment, its name, class and URL."""

    kind: str
    name: str
    env_class: str
    url: DatabaseURL | None
    problem: str | None = None  # why its URL cannot be used (an unset variable)

    def describe(self) -> str:
        return f"{self.env_class} {self.kind} {self.name!r}"


class IdentityResolver:
    """Identities of database URLs, each asked of its server once per run."""

    def __init__(self) -> None:
        self._cache: dict[str, DatabaseIdentity | DatasafeError] = {}

    def lookup(self, url: DatabaseURL) -> DatabaseIdentity | DatasafeError:
        """The identity of ``url``, or the error that kept its server from saying."""
        key = url.render(hide_password=False)
        if key not in self._cache:
            try:
                self._cache[key] = get_engine(url.engine).identity(url)
            except DatasafeError as exc:
                log.debug("identity of %s: %s", url, exc)
                self._cache[key] = exc
        return self._cache[key]

    def prefetch(self, urls: list[DatabaseURL]) -> None:
        """Ask several servers side by side (each answer is cached)."""
        todo = [u for u in urls if u.render(hide_password=False) not in self._cache]
        if len(todo) > 1:
            with ThreadPoolExecutor(min(8, len(todo))) as pool:
                list(pool.map(self.lookup, todo))
        for u in todo:
            self.lookup(u)


def configured(cfg: LoadedConfig) -> list[Known]:
    """Every configured source and environment."""
    out = []
    for name, sc in cfg.config.sources.items():
        try:
            out.append(Known("source", name, sc.env_class, DatabaseURL.parse(sc.url)))
        except ConfigError as exc:
            out.append(Known("source", name, sc.env_class, None, str(exc)))
    usable = environments(cfg)
    for name, ec in cfg.config.environments.items():
        env = usable.get(name)
        out.append(Known("environment", name, ec.env_class, env.url if env else None,
                         None if env else "its URL cannot be used (an unset variable?)"))
    return out


@dataclass
class Match:
    """What the configured databases say about one identity."""

    matches: list[Known]
    #: configured databases whose identity could not be established, with the reason
    unknown: list[tuple[Known, str]]

    @property
    def env_class(self) -> str | None:
        """The most restrictive class among the matches (None: no configured database matches)."""
        return min((k.env_class for k in self.matches), key=RANK.__getitem__, default=None)


def match(resolver: IdentityResolver, candidates: list[Known], identity: DatabaseIdentity) -> Match:
    """Which of ``candidates`` are the database ``identity`` names."""
    resolver.prefetch([k.url for k in candidates if k.url is not None and k.url.engine == identity.engine])
    found: list[Known] = []
    unknown: list[tuple[Known, str]] = []
    for k in candidates:
        if k.url is None:
            unknown.append((k, k.problem or "no usable URL"))
            continue
        if k.url.engine != identity.engine:
            continue
        other = resolver.lookup(k.url)
        if isinstance(other, DatasafeError):
            unknown.append((k, str(other)))
        elif other.same_database(identity):
            found.append(k)
    return Match(found, unknown)
