"""Seeded Faker: one generator per (transformer, locale), re-seeded before every value.

Faker generators are built with ``use_weighting=False``: every name in a locale's list is
equally likely. That is several times faster than Faker's weighted choice (which recomputes
cumulative weights on every call) and gives more distinct outputs, so fewer collisions in unique
columns. Seeding and generating happen under a lock, so threads can share a generator.

Faker's data lists change between Faker releases; outputs of Faker-based transformers are stable
for one Faker version (the transformers that do not use Faker are stable across versions).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import faker as faker_package
from faker import Factory
from faker.config import AVAILABLE_LOCALES
from faker.generator import Generator

from datasafe.masking.rules_yaml import did_you_mean

DEFAULT_LOCALE = "en_US"
log = logging.getLogger(__name__)

# Generator methods that are not data providers.
_NOT_PROVIDERS = frozenset({"seed", "seed_instance", "seed_locale", "add_provider", "provider", "get_providers",
                            "set_formatter", "get_formatter", "format", "parse", "set_arguments", "get_arguments",
                            "del_arguments", "random", "providers", "enum"})


def check_locale(locale: str) -> str:
    """The locale itself when Faker has it; ValueError (with a suggestion) otherwise."""
    if locale not in AVAILABLE_LOCALES:
        raise ValueError(f"unknown locale {locale!r}{did_you_mean(locale, AVAILABLE_LOCALES)}")
    return locale


#: values generated once per (provider, locale) and picked by keyed index; see FakerSlot.pooled
POOL_SIZE = 8192


@dataclass
class FakerSlot:
    """A Faker generator for one (transformer, locale), and the lock that serializes its use."""

    generator: Generator
    lock: threading.Lock
    locale: str = DEFAULT_LOCALE

    def pooled(self, seed: int, method: str) -> Any:
        """The value of ``method`` for ``seed``, drawn from a pool generated once.

        Seeding Faker and formatting a value costs tens of microseconds; a table of millions of
        rows masked that way takes minutes. The pool holds the results for seeds 0..POOL_SIZE-1
        (so it is the same in every run with the same Faker version), and ``seed`` picks one.
        Callers use it for their first choice only: alternatives for unique columns
        (attempt > 0) come from :meth:`call`, so they are not limited to the pool.
        """
        return self.pool(method)[seed % POOL_SIZE]

    def pool(self, method: str) -> list[Any]:
        """The values of ``method`` for the seeds 0..POOL_SIZE-1 (generated on first use).

        They depend on the locale only, so transformers share them (``email`` and ``first_name``
        both draw from the first names).
        """
        return _pool(self.locale, method)

    def call(self, seed: int, method: str, *args: Any, **kwargs: Any) -> Any:
        """Seed, then call one provider method: the result depends on the seed only."""
        with self.lock:
            self.generator.seed_instance(seed)
            return getattr(self.generator, method)(*args, **kwargs)

    def calls(self, seed: int, methods: tuple[str, ...]) -> list[Any]:
        """Seed once, then call several provider methods without arguments, in order."""
        with self.lock:
            self.generator.seed_instance(seed)
            return [getattr(self.generator, m)() for m in methods]

    def has_provider(self, method: str) -> bool:
        if method.startswith("_") or method in _NOT_PROVIDERS:
            return False
        return callable(getattr(self.generator, method, None))

    def provider_names(self) -> list[str]:
        return sorted(n for n in dir(self.generator) if self.has_provider(n))


@cache
def slot(owner: str, locale: str) -> FakerSlot:
    """The shared generator of transformer ``owner`` for ``locale`` (built on first use)."""
    generator = Factory.create(check_locale(locale), use_weighting=False)
    return FakerSlot(generator, threading.Lock(), locale)


@cache
def _pool(locale: str, method: str) -> list[Any]:
    cached = _cached_pool(locale, method)
    if cached is not None:
        return cached
    # a generator of its own: pools are built under its lock, never while another thread seeds it
    faker = slot("pools", locale)
    with faker.lock:
        values = []
        for i in range(POOL_SIZE):
            faker.generator.seed_instance(i)
            values.append(getattr(faker.generator, method)())
    _keep_pool(locale, method, values)
    return values


def cache_dir() -> Path | None:
    """Where pools are kept between runs; None when ``DATASAFE_CACHE_DIR`` is set empty (no cache).

    ``$DATASAFE_CACHE_DIR``, else ``$XDG_CACHE_HOME/datasafe``, else ``~/.cache/datasafe``.
    """
    configured = os.environ.get("DATASAFE_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "datasafe"


def _pool_file(locale: str, method: str) -> Path | None:
    base = cache_dir()
    if base is None:
        return None
    return base / "faker-pools" / f"faker-{faker_package.VERSION}" / locale / f"{method}-{POOL_SIZE}.json"


def _cached_pool(locale: str, method: str) -> list[Any] | None:
    """A pool generated by an earlier run (same Faker version, locale and size), or None.

    Building a pool calls Faker thousands of times (a third of a second for addresses); the
    values depend on nothing but Faker's version, the locale and the method, so they are kept.
    A file that does not hold exactly such a pool is ignored (and replaced).
    """
    path = _pool_file(locale, method)
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    values = doc.get("values") if isinstance(doc, dict) else None
    if (doc.get("faker") != faker_package.VERSION or doc.get("locale") != locale or doc.get("method") != method
            or not isinstance(values, list) or len(values) != POOL_SIZE
            or not all(isinstance(v, str) for v in values)):
        log.debug("ignoring cached Faker pool %s: not a pool of %s/%s", path, locale, method)
        return None
    return values


def _keep_pool(locale: str, method: str, values: list[Any]) -> None:
    """Write a pool of text values for later runs (atomically); a cache that cannot be written is skipped."""
    path = _pool_file(locale, method)
    if path is None or not all(isinstance(v, str) for v in values):
        return
    doc = {"faker": faker_package.VERSION, "locale": locale, "method": method, "values": values}
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=".pool-", delete=False) as f:
            temporary = f.name
            json.dump(doc, f, ensure_ascii=False)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        log.debug("cannot keep the Faker pool in %s: %s", path, exc)


def to_text(value: Any) -> str:
    """A Faker result as database text: dates ISO, datetimes with a space, lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def ascii_fold(text: str) -> str:
    """``'Søren Åström'`` → ``'Soren Astrom'``: accents removed, other non-ASCII dropped."""
    folded = unicodedata.normalize("NFKD", text.replace("ø", "o").replace("Ø", "O").replace("ß", "ss")
                                   .replace("æ", "ae").replace("Æ", "AE").replace("ł", "l").replace("Ł", "L"))
    return folded.encode("ascii", "ignore").decode("ascii")


def slug(text: str, sep: str = "-") -> str:
    """Lower-case ASCII letters and digits, runs of anything else turned into ``sep``."""
    return _NON_ALNUM.sub(sep, ascii_fold(text).lower()).strip(sep)

