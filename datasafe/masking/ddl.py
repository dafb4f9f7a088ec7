"""Masking the schema's own text: comments, defaults, CHECKs, view and function bodies, policies, enum labels.

A masked copy keeps its schema, and personal data hides there too: an address in a column
comment, a customer's e-mail as a default, a policy or a view that singles out one person. So a
masked snapshot's schema parts are not copied as they are:

- comments are left out (``schema: {comments: strip}``, the default), or kept with ``keep``;
- every other piece of schema text (and every kept comment) is checked with
  :func:`datasafe.scan.embedded.embedded_categories`; a piece that holds personal data must be
  rewritten, dropped or accepted under the rules' ``schema`` key, or a strict run stops before
  anything is written (:class:`SchemaTextError`, exit code 3) naming the object and what it holds.

Objects are named as ``datasafe scan`` names them (:mod:`datasafe.scan.schema_text`), e.g.
``comment on column public.customers.email``, ``default of public.customers.contact``,
``check customers_note_check on public.customers``, ``view public.vip``,
``function public.greet(text)``, ``policy p_self on public.customers``, ``enum public.mood``.

PostgreSQL parts are pg_dump archives, rewritten entry by entry without a server
(:mod:`.ddl_pg`); MySQL/MariaDB and SQLite parts are JSON documents of ``CREATE`` statements
(:mod:`.ddl_sql`). A part that needs no change is kept byte for byte.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from datasafe.masking.ddl_pg import PgDoc
from datasafe.masking.ddl_sql import Edit, MySQLDoc, SchemaDoc, SQLiteDoc, Unit, apply_edits, comment_literal
from datasafe.masking.errors import RulesError
from datasafe.masking.rules import Rules
from datasafe.masking.rules_yaml import did_you_mean
from datasafe.scan.embedded import embedded_categories
from datasafe.scan.model import CATEGORIES, SchemaHit, SchemaText
from datasafe.snapshot.chunks import Compression, read_whole
from datasafe.snapshot.manifest import Manifest, SchemaPart
from datasafe.snapshot.repository import SnapshotObjects, SnapshotWriter

log = logging.getLogger(__name__)

#: schema part format → the document that reads and writes it
DOCUMENTS: dict[str, type[SchemaDoc]] = {"pg_dump-custom": PgDoc, "mysql-schema-json": MySQLDoc,
                                         "sqlite-schema-json": SQLiteDoc}


class SchemaTextError(RulesError):
    """Schema text holds personal data that the rules neither rewrite, drop nor accept (strict coverage).

    Exit code 3, like every rules and coverage error. The message names the object and what it
    holds, never the text, e.g. ``schema text of default of public.customers.contact holds an
    e-mail address: rewrite, drop or accept it in the rules (schema: rewrite / drop / accept)``.
    """


@dataclass
class SchemaObject:
    """What happened to one object's text."""

    action: str  #: stripped, rewritten, dropped, accepted, or kept (flagged, strict coverage off)
    kind: str
    found: dict[str, int] = field(default_factory=dict)  #: category → count, as embedded_categories says
    reason: str | None = None  #: why an accepted object may keep its text; for a dropped one: with what

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "kind": self.kind}
        if self.found:
            out["found"] = dict(sorted(self.found.items()))
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class SchemaReport:
    """What schema masking did (or, from :func:`check_schema`, will do), per object."""

    comments: str = "strip"
    objects: dict[str, SchemaObject] = field(default_factory=dict)
    #: flagged pieces the rules do not handle: the error of a strict run, the warning of another
    unresolved: list[SchemaHit] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for o in self.objects.values() if o.action == action)

    def describe(self) -> dict[str, Any]:
        """The report as the masked manifest's ``masking.schema`` records it (names and counts, no text)."""
        return {"comments": self.comments,
                "objects": {name: o.describe() for name, o in sorted(self.objects.items())}}


def check_schema(manifest: Manifest, objects: SnapshotObjects, rules: Rules, *, strict: bool) -> SchemaReport:
    """Check the snapshot's schema text against the rules before any masking work.

    Returns what :func:`mask_schema` will do. Non-strict runs log a warning for each flagged piece
    the rules do not handle, and keep it.

    Raises:
        RulesError: the ``schema`` rules name an object the schema does not have, or ask for
            something that cannot be done (dropping a column default, an object others need).
        SchemaTextError: strict coverage, and schema text holds personal data the rules do not handle.
        IntegrityError: a schema part is damaged.
        DependencyError: a pg_dump archive of a version this datasafe does not know.
    """
    return _plan(_documents(manifest, objects, manifest.schema_parts, strict), rules, strict)


def mask_schema(manifest: Manifest, parts: list[SchemaPart], objects: SnapshotObjects, writer: SnapshotWriter,
                rules: Rules, *, strict: bool, compression: Compression | None = None
                ) -> tuple[list[SchemaPart], SchemaReport]:
    """Write the masked snapshot's schema parts: comments stripped, pieces rewritten or dropped.

    Args:
        manifest: the source snapshot's manifest.
        parts: the schema parts as the table pipeline recorded them: already copied into
            ``writer`` (a part that changes replaces its copy) or the source's (copied here).
        objects: the source snapshot's objects.
        writer: the masked snapshot's writer.
        rules: the rules; their ``schema`` key.
        strict: strict coverage (as the run's plan says).
        compression: for the parts that are rewritten (default: zstd level 3).

    Returns:
        The parts to record in the masked manifest, and what was done to which object.

    Raises:
        The errors of :func:`check_schema`, before anything is written.
    """
    docs = _documents(manifest, objects, parts, strict)
    report = _plan(docs, rules, strict)
    out = []
    for part, doc in zip(parts, docs, strict=True):
        if doc is None or not doc.changed:
            if not writer.objects.exists(part.path):
                part = _store(writer, part, read_whole(objects, part, label=f"schema {part.name}"), compression)
            out.append(part)
            continue
        writer.objects.delete(part.path)  # the unmasked copy: a local hard link goes, the source stays
        out.append(_store(writer, part, doc.dump(), compression))
    return out, report


def _store(writer: SnapshotWriter, part: SchemaPart, data: bytes, compression: Compression | None) -> SchemaPart:
    blob = writer.blob_writer(part.path.split("/")[1], compression or Compression())
    try:
        blob.write(data)
        chunk = blob.close()[0]
    except BaseException:
        blob.abort()
        raise
    return SchemaPart(name=part.name, format=part.format, **chunk.model_dump())


def _documents(manifest: Manifest, objects: SnapshotObjects, parts: list[SchemaPart], strict: bool
               ) -> list[SchemaDoc | None]:
    """The source's schema parts as documents (``parts`` give the formats; the bytes are the source's)."""
    source = {p.path: p for p in manifest.schema_parts}
    docs: list[SchemaDoc | None] = []
    for part in parts:
        cls = DOCUMENTS.get(part.format)
        if cls is None:
            message = f"schema part {part.name} has format {part.format!r}, which datasafe cannot check for " \
                      "personal data"
            if strict:
                raise SchemaTextError(message)
            log.warning("%s: copied as it is (strict coverage is off)", message)
            docs.append(None)
            continue
        stored = source.get(part.path, part)
        docs.append(cls(read_whole(objects, stored, label=f"schema {part.name}")))
    return docs


def _plan(docs: list[SchemaDoc | None], rules: Rules, strict: bool) -> SchemaReport:
    """Decide and apply (in memory) what happens to every piece of schema text."""
    sr = rules.schema_rules
    report = SchemaReport(comments=sr.comments)
    present = [(d, u) for d in docs if d is not None for u in d.units]
    _check_names(present, rules)
    handled = set(sr.rewrite) | set(sr.accept)
    for doc, unit in present:  # 1. comments: stripped unless kept, rewritten or accepted; dropped when named
        spans = [s for s in doc.comments(unit)
                 if s.object in sr.drop or (sr.comments == "strip" and s.object not in handled)]
        if spans:
            doc.strip(unit, spans)
            for s in spans:
                _record(report, s.object, "dropped" if s.object in sr.drop else "stripped", "comment", s.text)
    dropped = [(d, u) for d, u in present
               if not u.removed and any(p.object in sr.drop and p.kind != "comment" for p in d.pieces(u))]
    for doc, unit in dropped:  # 2. objects left out
        named = next(p.object for p in doc.pieces(unit) if p.object in sr.drop and p.kind != "comment")
        if unit.fixed is not None:
            raise rules.loc("schema", "drop", sr.drop.index(named)).error(
                f"cannot drop {named}: {unit.fixed}; rewrite or accept it")
        for piece in doc.pieces(unit):
            _record(report, piece.object, "dropped", piece.kind, piece.text)
        for other in doc.drop(unit):
            report.objects[other] = SchemaObject("dropped", "comment", reason=f"with {named}")
    for doc in {id(d): d for d, _u in dropped}.values():
        needed = doc.dependents()
        if needed:
            unit, user = needed[0]
            raise rules.loc("schema", "drop").error(f"cannot drop {unit.name}: {user} depends on it "
                                                    "(drop that too, or rewrite instead)")
    for doc, unit in present:  # 3. every piece still there
        if not unit.removed:
            apply_edits(unit, _pieces(doc, unit, rules, report))
    if report.unresolved:
        first, more = report.unresolved[0], report.unresolved[1:]
        droppable = next((u.fixed is None for d, u in present if first.object in _names(d, u)), False)
        what = "rewrite, drop or accept" if droppable else "rewrite or accept"
        message = f"schema text of {first.object} holds {first.evidence}: {what} it in the rules " \
                  f"(schema: {what.replace(',', ' /').replace(' or ', ' / ')})"
        if more:
            message += f"; {len(more)} more: " + ", ".join(h.object for h in more[:5]) + (", ..." if len(more) > 5
                                                                                         else "")
        if strict:
            raise SchemaTextError(message, hint="see 'Schema text' in docs/masking.md")
        log.warning("%s; kept as it is: strict coverage is off", message)
    return report


def _names(doc: SchemaDoc, unit: Unit) -> set[str]:
    return {p.object for p in doc.pieces(unit)} | {s.object for s in doc.comments(unit)}


def _check_names(present: list[tuple[SchemaDoc, Unit]], rules: Rules) -> None:
    sr = rules.schema_rules
    known: dict[str, int] = {}
    for doc, unit in present:
        for name in [p.object for p in doc.pieces(unit) if p.kind != "comment"] + \
                    [s.object for s in doc.comments(unit)]:
            known[name] = known.get(name, 0) + 1
    for i, name in enumerate(sr.drop):
        if name not in known:
            raise rules.loc("schema", "drop", i).error(f"no object {name!r} in the snapshot's schema"
                                                       f"{did_you_mean(name, known)}")
    for key, names in (("rewrite", sr.rewrite), ("accept", sr.accept)):
        for name in names:
            if name not in known:
                raise rules.loc("schema", key, name).error(f"no object {name!r} in the snapshot's schema"
                                                           f"{did_you_mean(name, known)}")
            if key == "rewrite" and known[name] > 1:
                raise rules.loc("schema", key, name).error(f"{name!r} names {known[name]} pieces of text: accept "
                                                           "them, or let comments: strip remove them")


def _pieces(doc: SchemaDoc, unit: Unit, rules: Rules, report: SchemaReport) -> list[Edit]:
    """Rewrite, accept or check each piece of a kept unit; returns the edits of its rewrites."""
    sr = rules.schema_rules
    edits: list[Edit] = []
    spans = {s.object: s for s in doc.comments(unit)}
    cursor = 0
    for piece in doc.pieces(unit):
        at = -1
        if piece.kind not in ("comment", "enum"):  # pieces are slices of the unit's text, in order
            at = _locate(unit.sql, piece, cursor)
            at = _locate(unit.sql, piece, 0) if at < 0 else at
            cursor = at + len(piece.text) if at >= 0 else cursor
        if piece.object in sr.rewrite:
            new = sr.rewrite[piece.object]
            loc = rules.loc("schema", "rewrite", piece.object)
            if piece.kind == "comment":
                span = spans.get(piece.object)
                if span is None:
                    raise loc.error(f"{piece.object} cannot be found in its definition: accept it or strip it")
                edits.append((*span.literal, comment_literal(span, new, doc.quote(unit, new))))
            elif piece.kind == "enum":
                labels, places = new.splitlines(), doc.label_spans(unit, piece)
                if len(labels) != len(places):
                    raise loc.error(f"{piece.object} has {len(places)} labels: give as many, one per line")
                edits.extend((a, b, doc.quote(unit, label)) for (a, b), label in zip(places, labels, strict=True))
            elif at < 0:
                raise loc.error(f"the text of {piece.object} cannot be found in its definition: accept or drop it")
            else:
                edits.append((at, at + len(piece.text), new))
            _record(report, piece.object, "rewritten", piece.kind, piece.text)
        elif piece.object in sr.accept:
            _record(report, piece.object, "accepted", piece.kind, piece.text, sr.accept[piece.object])
        elif found := embedded_categories(piece.text):
            report.unresolved.append(SchemaHit(piece.object, piece.kind, min(found), _holds(found)))
            _record(report, piece.object, "kept", piece.kind, piece.text)
    return edits


def _locate(sql: str, piece: SchemaText, start: int) -> int:
    """Where the piece's text is in ``sql`` at or after ``start`` (-1: nowhere); a default's after ``DEFAULT``."""
    if piece.kind != "default":
        return sql.find(piece.text, start)
    m = re.compile(r"\bDEFAULT\s+(" + re.escape(piece.text) + ")", re.I).search(sql, start)
    return m.start(1) if m else -1


def _record(report: SchemaReport, name: str, action: str, kind: str, text: str, reason: str | None = None) -> None:
    report.objects[name] = SchemaObject(action, kind, embedded_categories(text), reason)


def _holds(found: dict[str, int]) -> str:
    """``an e-mail address and a phone number``: what a piece holds, without its text."""
    words = []
    for category in sorted(found):
        label = CATEGORIES.get(category, category)
        words.append(("an " if label[0] in "aeiouAEIOU" or label.startswith("IP") else "a ") + label)
    return " and ".join(words)


__all__ = ["SchemaObject", "SchemaReport", "SchemaText", "SchemaTextError", "check_schema", "mask_schema"]
