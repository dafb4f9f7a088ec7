"""Labels of the scan corpus, and the score of a ``datasafe scan --json`` report against them.

Label files (``labels/<engine>.yaml``) name every column of every table::

    engine: postgresql
    tables:
      public.customer:
        customer_id: {pii: false}
        email: {pii: true, category: email}
        email_normalized: {pii: true, category: derived, accept: [email], generated: true}
      public.events:
        payload: {pii: true, category: email, accept: [phone, person_name],
                  paths: {$.user.email: email, $.contact.phone: phone}}
    schema:            # personal data planted in the schema's own text
      - {object: 'customer\\W+email\\b', kind: [comment], category: email}
    schema_negatives:  # schema text that only looks personal
      - {object: 'film\\W+sku\\b', kind: [comment]}

Column entries:

- ``pii``: true when the column holds values of one of the categories of
  ``datasafe/scan/model.py`` (identifiers, contact data, secrets, free text or blobs that embed
  them, derived copies). Attributes that identify nobody on their own (salary, hire date, job
  title, loyalty points, a phone extension, the last four digits of a card) are ``false``: their
  rows are personal data only through the identifying columns beside them.
- ``category``: the expected category; ``accept``: other categories that are also right (a
  generated ``lower(email)`` is ``derived`` or ``email``; a note that embeds addresses is
  ``free_text``, ``email`` or ``phone``).
- ``paths``: JSON paths (``$.user.email``) or ``[]`` (array elements) that hold personal data,
  with their category. Scored as an extra figure (path recall); a path is found when a finding of
  the column has that path (``$.a.b``, ``$['a']['b']`` and ``a.b`` are the same; ``[*]``, ``[0]``
  and ``[]`` all mean "an element").
- ``generated``: a generated column. Snapshots do not store them (they are recomputed on
  restore), so when a snapshot scan does not list the column it is counted as *absent*, not as a
  miss; when the report lists it, it is scored like any other column.

Schema entries: ``object`` is a regular expression searched (case-insensitively) in the hit's
``object`` (the scan names objects like ``comment on column public.customer.email``; the
expressions accept other spellings that name the same table, column or object). ``kind`` lists the
acceptable kinds, ``category`` the expected category. Each hit is matched to at most one plant, in
file order, preferring a hit whose kind and category are right. A plant is *found* when a hit
matches its object; *found strictly* when that hit's kind and category are also right.

Scoring at column level: a column counts as *detected* when the report's ``category`` is not null.
TP = pii and detected, FN = pii and not detected (or not in the report), FP = not pii and
detected, TN = the rest. recall = TP / (TP + FN), precision = TP / (TP + FP). The stricter line
counts a detection as correct only when its category is the expected one or an accepted one:
category recall = correct / pii columns, category precision = correct / detected columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LABELS_DIR = Path(__file__).with_name("labels")
#: recall and precision the scan must reach over all engines (column level)
RECALL_TARGET = 0.95
PRECISION_TARGET = 0.90


def categories() -> set[str]:
    from datasafe.scan.model import CATEGORIES

    return set(CATEGORIES)


@dataclass(frozen=True)
class ColumnLabel:
    table: str
    column: str
    pii: bool
    category: str | None = None
    accept: tuple[str, ...] = ()
    paths: tuple[tuple[str, str], ...] = ()
    generated: bool = False
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    @property
    def categories(self) -> tuple[str, ...]:
        return ((self.category,) if self.category else ()) + self.accept


@dataclass(frozen=True)
class SchemaLabel:
    object: str  #: regular expression
    kinds: tuple[str, ...] = ()
    category: str | None = None
    note: str = ""

    def matches(self, hit: Mapping[str, Any]) -> bool:
        return re.search(self.object, str(hit.get("object", "")), re.IGNORECASE) is not None

    def exact(self, hit: Mapping[str, Any]) -> bool:
        kind_ok = not self.kinds or str(hit.get("kind", "")) in self.kinds
        return kind_ok and (self.category is None or hit.get("category") == self.category)


@dataclass
class Labels:
    engine: str
    columns: list[ColumnLabel]
    schema: list[SchemaLabel] = field(default_factory=list)
    schema_negatives: list[SchemaLabel] = field(default_factory=list)

    @property
    def tables(self) -> list[str]:
        return list(dict.fromkeys(c.table for c in self.columns))

    def column_set(self) -> set[tuple[str, str]]:
        return {(c.table, c.column) for c in self.columns}


class LabelError(ValueError):
    """A label file that does not follow the format."""


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def parse_labels(data: Mapping[str, Any], *, known: set[str] | None = None) -> Labels:
    """Labels from the parsed YAML; LabelError names the first entry that is wrong."""
    known = categories() if known is None else known
    engine = str(data.get("engine", ""))
    cols: list[ColumnLabel] = []
    for table, entries in (data.get("tables") or {}).items():
        if not isinstance(entries, Mapping) or not entries:
            raise LabelError(f"{engine}: table {table}: no columns")
        for column, spec in entries.items():
            where = f"{engine}: {table}.{column}"
            if not isinstance(spec, Mapping) or not isinstance(spec.get("pii"), bool):
                raise LabelError(f"{where}: needs pii: true|false")
            unknown_keys = set(spec) - {"pii", "category", "accept", "paths", "generated", "note"}
            if unknown_keys:
                raise LabelError(f"{where}: unknown keys {sorted(unknown_keys)}")
            category = spec.get("category")
            if spec["pii"] and category not in known:
                raise LabelError(f"{where}: a pii column needs a category of datasafe.scan.model, got {category!r}")
            if not spec["pii"] and (category or spec.get("accept") or spec.get("paths")):
                raise LabelError(f"{where}: a column that is not pii has no category, accept or paths")
            accept = _tuple(spec.get("accept"))
            paths = tuple((str(p), str(c)) for p, c in (spec.get("paths") or {}).items())
            for c in accept + tuple(c for _, c in paths):
                if c not in known:
                    raise LabelError(f"{where}: unknown category {c!r}")
            cols.append(ColumnLabel(str(table), str(column), spec["pii"], category, accept, paths,
                                    bool(spec.get("generated", False)), str(spec.get("note", ""))))

    def schema_list(key: str, need_category: bool) -> list[SchemaLabel]:
        out = []
        for i, spec in enumerate(data.get(key) or []):
            if not isinstance(spec, Mapping) or not spec.get("object"):
                raise LabelError(f"{engine}: {key}[{i}]: needs object: <regex>")
            re.compile(str(spec["object"]))
            category = spec.get("category")
            if need_category and category not in known:
                raise LabelError(f"{engine}: {key}[{i}]: unknown category {category!r}")
            out.append(SchemaLabel(str(spec["object"]), _tuple(spec.get("kind")), category, str(spec.get("note", ""))))
        return out

    labels = Labels(engine, cols, schema_list("schema", True), schema_list("schema_negatives", False))
    if len(labels.column_set()) != len(cols):
        raise LabelError(f"{engine}: a column is labelled twice")
    return labels


def load_labels(engine: str, directory: Path = LABELS_DIR) -> Labels:
    """The labels of one engine of the corpus (``labels/<engine>.yaml``)."""
    path = directory / f"{engine}.yaml"
    labels = parse_labels(yaml.safe_load(path.read_text()))
    if labels.engine != engine:
        raise LabelError(f"{path}: says engine {labels.engine!r}")
    return labels


# -- scoring --------------------------------------------------------------------------------------


def normalize_path(path: str | None) -> tuple[str, ...]:
    """``$.a.b`` / ``$['a']['b']`` / ``a.b`` -> ('a', 'b'); any element marker -> '[]'."""
    if not path:
        return ()
    text = re.sub(r"\[\s*['\"]([^'\"]*)['\"]\s*\]", r".\1", path.strip())
    text = re.sub(r"\[\s*(\*|\d+|)\s*\]", ".[]", text)
    return tuple(p for p in text.lstrip("$").split(".") if p)


@dataclass
class Score:
    """Counts of one engine (or their sum)."""

    engine: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    correct: int = 0  #: TP whose category is the expected or an accepted one
    absent_generated: int = 0  #: generated columns the report does not list (not scored)
    missing: list[str] = field(default_factory=list)  #: labelled columns the report does not list
    unlabelled: list[str] = field(default_factory=list)  #: report columns without a label
    false_negatives: list[str] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)
    wrong_category: list[str] = field(default_factory=list)
    paths_total: int = 0
    paths_found: int = 0
    missed_paths: list[str] = field(default_factory=list)
    schema_total: int = 0
    schema_found: int = 0
    schema_strict: int = 0
    missed_schema: list[str] = field(default_factory=list)
    schema_false_alarms: list[str] = field(default_factory=list)  #: hits on schema_negatives
    schema_other: list[str] = field(default_factory=list)  #: hits matching no label

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        return self.fp + self.tn

    @property
    def detected(self) -> int:
        return self.tp + self.fp

    @staticmethod
    def _ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    @property
    def recall(self) -> float | None:
        return self._ratio(self.tp, self.positives)

    @property
    def precision(self) -> float | None:
        return self._ratio(self.tp, self.detected)

    @property
    def category_recall(self) -> float | None:
        return self._ratio(self.correct, self.positives)

    @property
    def category_precision(self) -> float | None:
        return self._ratio(self.correct, self.detected)

    @property
    def path_recall(self) -> float | None:
        return self._ratio(self.paths_found, self.paths_total)

    @property
    def schema_recall(self) -> float | None:
        return self._ratio(self.schema_found, self.schema_total)

    @property
    def schema_strict_recall(self) -> float | None:
        return self._ratio(self.schema_strict, self.schema_total)

    def passed(self, recall: float = RECALL_TARGET, precision: float = PRECISION_TARGET) -> bool:
        return (self.recall or 0.0) >= recall and (self.precision if self.precision is not None else 0.0) >= precision

    def __add__(self, other: Score) -> Score:
        out = Score("overall")
        for name in ("tp", "fp", "fn", "tn", "correct", "absent_generated", "paths_total", "paths_found",
                     "schema_total", "schema_found", "schema_strict"):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        for name in ("missing", "unlabelled", "false_negatives", "false_positives", "wrong_category", "missed_paths",
                     "missed_schema", "schema_false_alarms", "schema_other"):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        return out

    def as_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {"engine": self.engine, "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
                "pii_columns": self.positives, "other_columns": self.negatives, "detected": self.detected,
                "recall": r(self.recall), "precision": r(self.precision), "category_correct": self.correct,
                "category_recall": r(self.category_recall), "category_precision": r(self.category_precision),
                "absent_generated": self.absent_generated, "paths_total": self.paths_total,
                "paths_found": self.paths_found, "path_recall": r(self.path_recall),
                "schema_total": self.schema_total, "schema_found": self.schema_found,
                "schema_strict": self.schema_strict, "schema_recall": r(self.schema_recall),
                "schema_strict_recall": r(self.schema_strict_recall),
                "missing": self.missing, "unlabelled": self.unlabelled,
                "false_negatives": self.false_negatives, "false_positives": self.false_positives,
                "wrong_category": self.wrong_category, "missed_paths": self.missed_paths,
                "missed_schema": self.missed_schema, "schema_false_alarms": self.schema_false_alarms,
                "schema_other": self.schema_other}


def total(scores: Iterable[Score]) -> Score:
    out = Score("overall")
    for s in scores:
        out = out + s
    return out


def _resolve_table(name: str, tables: list[str]) -> str | None:
    """The labelled table a report's table name means: exact, without quotes, by its last part,
    or with ``public.`` in front."""
    if name in tables:
        return name
    clean = name.replace('"', "").replace("`", "")
    if clean in tables:
        return clean
    bare = clean.rsplit(".", 1)[-1]
    by_bare = [t for t in tables if t.rsplit(".", 1)[-1] == bare]
    if len(by_bare) == 1:
        return by_bare[0]
    return f"public.{bare}" if f"public.{bare}" in tables else None


def score(report: Mapping[str, Any], labels: Labels) -> Score:
    """Score one ``ScanReport.as_dict()`` against the labels of its engine."""
    out = Score(labels.engine)
    tables = labels.tables
    by_key = {(c.table, c.column): c for c in labels.columns}
    by_fold = {(c.table, c.column.casefold()): c for c in labels.columns}
    seen: dict[tuple[str, str], Mapping[str, Any]] = {}
    for col in report.get("columns", []):
        table = _resolve_table(str(col.get("table", "")), tables)
        column = str(col.get("column", ""))
        label = None
        if table is not None:
            label = by_key.get((table, column)) or by_fold.get((table, column.casefold()))
        if label is None:
            out.unlabelled.append(f"{col.get('table')}.{column}")
            continue
        seen[(label.table, label.column)] = col

    for label in labels.columns:
        col = seen.get((label.table, label.column))
        if col is None:
            if label.generated:
                out.absent_generated += 1
                continue
            out.missing.append(label.name)
        category = col.get("category") if col is not None else None
        detected = category is not None
        if label.pii and detected:
            out.tp += 1
            if category in label.categories:
                out.correct += 1
            else:
                out.wrong_category.append(f"{label.name}: {category} (expected {'/'.join(label.categories)})")
        elif label.pii:
            out.fn += 1
            out.false_negatives.append(f"{label.name} ({label.category})")
        elif detected:
            out.fp += 1
            out.false_positives.append(f"{label.name}: {category}")
        else:
            out.tn += 1
        if label.paths:
            found = {normalize_path(f.get("path")) for f in (col or {}).get("findings", []) if f.get("path")}
            for path, _category in label.paths:
                out.paths_total += 1
                if normalize_path(path) in found:
                    out.paths_found += 1
                else:
                    out.missed_paths.append(f"{label.name} {path}")

    hits = list(report.get("schema", []))
    used: set[int] = set()
    for plant in labels.schema:
        out.schema_total += 1
        candidates = [i for i, h in enumerate(hits) if i not in used and plant.matches(h)]
        exact = [i for i in candidates if plant.exact(hits[i])]
        pick = (exact or candidates or [None])[0]
        if pick is None:
            out.missed_schema.append(f"{plant.object} ({'/'.join(plant.kinds) or 'any'}, {plant.category})")
            continue
        used.add(pick)
        out.schema_found += 1
        out.schema_strict += bool(exact)
    for i, hit in enumerate(hits):
        if i in used:
            continue
        what = f"{hit.get('object')} [{hit.get('kind')}]: {hit.get('category')}"
        if any(n.matches(hit) for n in labels.schema_negatives):
            out.schema_false_alarms.append(what)
        elif not any(p.matches(hit) for p in labels.schema):  # another hit on a planted object is no news
            out.schema_other.append(what)
    return out


# -- printing -------------------------------------------------------------------------------------


def _pct(v: float | None) -> str:
    return "   n/a" if v is None else f"{100 * v:5.1f}%"


def format_table(scores: list[Score], *, details: bool = True) -> str:
    """The table the bench script prints: one line per engine and one overall."""
    head = (f"{'engine':<12} {'cols':>4} {'pii':>4} {'neg':>4} {'TP':>4} {'FP':>4} {'FN':>4} {'TN':>4} "
            f"{'recall':>7} {'precis.':>7} | {'cat.ok':>6} {'c.rec':>7} {'c.prec':>7} | {'paths':>9} | "
            f"{'schema':>7} {'strict':>7}")
    lines = [head, "-" * len(head)]
    rows = [*scores, total(scores)] if len(scores) > 1 else list(scores)
    for s in rows:
        lines.append(
            f"{s.engine:<12} {s.positives + s.negatives:>4} {s.positives:>4} {s.negatives:>4} {s.tp:>4} {s.fp:>4} "
            f"{s.fn:>4} {s.tn:>4} {_pct(s.recall):>7} {_pct(s.precision):>7} | {s.correct:>6} "
            f"{_pct(s.category_recall):>7} {_pct(s.category_precision):>7} | "
            f"{f'{s.paths_found}/{s.paths_total}':>9} | {f'{s.schema_found}/{s.schema_total}':>7} "
            f"{f'{s.schema_strict}/{s.schema_total}':>7}")
    if details:
        for s in scores:
            for title, items in (("missed (FN)", s.false_negatives), ("false alarms (FP)", s.false_positives),
                                 ("wrong category", s.wrong_category), ("not in the report", s.missing),
                                 ("not labelled", s.unlabelled), ("missed JSON/array paths", s.missed_paths),
                                 ("missed schema plants", s.missed_schema),
                                 ("schema hits on look-alikes", s.schema_false_alarms),
                                 ("other schema hits", s.schema_other)):
                if items:
                    lines.append(f"{s.engine}: {title} ({len(items)}):")
                    lines += [f"    {item}" for item in items]
            if s.absent_generated:
                lines.append(f"{s.engine}: {s.absent_generated} generated column(s) not in the snapshot (not scored)")
    return "\n".join(lines)
