"""The schema's own text, piece by piece: :class:`SchemaText`, and the :class:`SchemaReader` seam.

Personal data hides in schemas too (a comment, a default, a CHECK, a view or function body, an
enum label); ``datasafe scan`` looks for it, and masking rewrites it. Every piece is named by the
object it belongs to, the same way whether read from a snapshot's schema part or from a live
database's catalogs, e.g. ``comment on column public.customers.email``, ``default of
public.customers.contact``, ``check customers_note_check on public.customers``, ``view public.vip``,
``function public.greet(text)``, ``policy p_self on public.customers``, ``enum public.mood``,
``generated column public.customers.email_lower``. Identifiers are unquoted, as manifest table
names are.

Each engine reads a live database's pieces (:meth:`~datasafe.engines.base.Engine.schema_text`) and
declares the :class:`SchemaReader` of its snapshots' schema parts (``EngineSpec.schema``), which
needs no driver.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from datasafe.errors import IntegrityError
from datasafe.snapshot.manifest import Manifest


@dataclass(frozen=True)
class SchemaText:
    """A piece of the schema's own text: a comment, a default, a CHECK, a view or function body..."""

    object: str  #: what it belongs to, e.g. ``comment on column public.customers.email``
    kind: str  #: comment, default, check, view, function, policy, enum, domain, index, trigger, other
    text: str


class SchemaReader(ABC):
    """Reads the schema parts an engine's backups write into :class:`SchemaText` pieces."""

    #: the schema part formats it reads (``SchemaPart.format``)
    formats: ClassVar[tuple[str, ...]]

    @abstractmethod
    def read(self, part_format: str, raw: bytes, manifest: Manifest) -> list[SchemaText]:
        """The pieces of one schema part (its whole stored content) of ``manifest``, in one of :attr:`formats`.

        Raises:
            IntegrityError: the part is damaged.
            DependencyError: a tool the format needs is not installed.
        """


def json_part(raw: bytes, manifest: Manifest) -> dict[str, Any]:
    """A schema part stored as a JSON object; IntegrityError when it is not one."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise IntegrityError(f"snapshot {manifest.snapshot_id}: its schema part is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise IntegrityError(f"snapshot {manifest.snapshot_id}: its schema part is not a JSON object")
    return data
