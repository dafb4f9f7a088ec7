"""Planning a masking run: which table gets which treatment, checked against the snapshot's schema.

Everything here happens before the first object is written: coverage of every column, rules
that name columns or tables that do not exist, transformers that do not suit a column, foreign
keys whose referencing columns must be masked like the columns they reference, and the order
that lets subsetting follow foreign keys (parents before children).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from datasafe.masking.errors import RulesError
from datasafe.masking.rules import Rules
from datasafe.masking.transformers import Transformer, build_transformer
from datasafe.masking.transformers.column_rule import ColumnRule
from datasafe.masking.types import ColumnInfo
from datasafe.snapshot.manifest import ForeignKey, Manifest, TableEntry

log = logging.getLogger(__name__)


@dataclass
class MaskedColumn:
    index: int
    name: str
    transformer: Transformer[Any]
    #: what the manifest records for this column, e.g. "email {keep_domain: true}" or "fk public.customers.email"
    strategy: str
    #: the (table, column) whose rule this is, when it is inherited through a foreign key
    inherited_from: tuple[str, str] | None = None


@dataclass
class TablePlan:
    ordinal: int
    entry: TableEntry
    #: mask (some columns change), copy (no column changes), truncate, exclude
    action: str
    masked: list[MaskedColumn] = field(default_factory=list)
    where: str | None = None
    #: constraints whose values must stay unique: column index tuples with at least one masked column
    unique: list[tuple[int, ...]] = field(default_factory=list)
    #: foreign keys resolved to (column indexes, parent table name, parent column names)
    parents: list[tuple[tuple[int, ...], str, tuple[str, ...]]] = field(default_factory=list)
    strategies: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.entry.name


@dataclass
class MaskPlan:
    manifest: Manifest
    rules: Rules
    tables: list[TablePlan]
    #: processing order (ordinals): parents before children
    order: list[int]
    strict: bool

    def table(self, name: str) -> TablePlan | None:
        for t in self.tables:
            if t.name == name:
                return t
        return None


def column_infos(entry: TableEntry) -> list[ColumnInfo]:
    unique_cols = {c for group in [entry.primary_key, *entry.unique] if len(group) == 1 for c in group}
    return [ColumnInfo(name=c.name, type=c.type, nullable=c.nullable, unique=c.name in unique_cols)
            for c in entry.columns]


def _foreign_keys(manifest: Manifest, entry: TableEntry, rules: Rules) -> list[ForeignKey]:
    fks = list(entry.foreign_keys)
    for v in rules.virtual_foreign_keys:
        if manifest.table(v.table) is entry:
            fks.append(ForeignKey(name="virtual", columns=list(v.columns), ref_table=v.ref_table,
                                  ref_columns=list(v.ref_columns)))
    return fks


def _describe(rule: ColumnRule) -> str:
    if not rule.options:
        return rule.transformer
    opts = ", ".join(f"{k}: {v}" for k, v in sorted(rule.options.items()))
    return f"{rule.transformer} {{{opts}}}"


def plan_masking(manifest: Manifest, rules: Rules, key: bytes, *, strict: bool | None = None) -> MaskPlan:
    """Check ``rules`` against the snapshot and decide every table's treatment.

    Raises RulesError listing every problem: unclassified columns (strict coverage), rules for
    tables or columns the snapshot does not have, transformers that do not suit their column.
    """
    strict = rules.strict if strict is None else strict
    problems: list[str] = []
    unclassified: list[str] = []
    plans: list[TablePlan] = []
    # 1. each table's own rules
    rules_of: dict[str, dict[str, ColumnRule]] = {}
    for ordinal, entry in enumerate(manifest.tables):
        rule = rules.rule_for(entry.name, entry.table)
        names = [c.name for c in entry.columns]
        if rule is None:
            unclassified += [f"{entry.name}.{c}" for c in names]
            plans.append(TablePlan(ordinal, entry, "copy"))
            continue
        if rule.action in ("truncate", "exclude"):
            plans.append(TablePlan(ordinal, entry, rule.action))
            continue
        for col in [*rule.columns, *rule.keep]:
            if col not in names:
                problems.append(f"{entry.name}: the rules name column {col!r}, which the snapshot does not have")
        unclassified += [f"{entry.name}.{c}" for c in names if c not in rule.columns and c not in rule.keep]
        rules_of[entry.name] = {c: r for c, r in rule.columns.items() if c in names}
        plans.append(TablePlan(ordinal, entry, "mask", where=rule.where))
    for name in rules.table_names():
        if not any(rules.rule_for(e.name, e.table) is rules.tables[name] for e in manifest.tables):
            problems.append(f"the rules name table {name!r}, which the snapshot does not have")

    # 2. foreign keys: a column referencing a masked column is masked the same way
    by_name = {p.name: p for p in plans}
    inherited: dict[tuple[str, str], tuple[ColumnRule, tuple[str, str]]] = {}
    changed = True
    while changed:
        changed = False
        for p in plans:
            if p.action != "mask" and p.action != "copy":
                continue
            for fk in _foreign_keys(manifest, p.entry, rules):
                parent = manifest.table(fk.ref_table)
                if parent is None:
                    continue
                ref_cols = fk.ref_columns if all(fk.ref_columns) else parent.primary_key
                for col, ref in zip(fk.columns, ref_cols, strict=False):
                    src = rules_of.get(parent.name, {}).get(ref)
                    origin = (parent.name, ref)
                    if src is None and origin in inherited:
                        src, origin = inherited[origin]
                    if src is None:
                        continue
                    own = rules_of.get(p.name, {}).get(col)
                    if own is not None and own.transformer == src.transformer and own.options == src.options:
                        continue
                    if own is not None:
                        problems.append(f"{p.name}.{col} references {parent.name}.{ref}, which is masked with "
                                        f"{_describe(src)}; it must be masked the same way, not with "
                                        f"{_describe(own)} (leave it to the foreign key)")
                        continue
                    if (p.name, col) not in inherited:
                        inherited[(p.name, col)] = (src, origin)
                        changed = True
    # 3. transformers, strategies, unique constraints
    for p in plans:
        for name in _bind(p, manifest, rules, rules_of.get(p.name, {}), inherited, key, problems):
            unclassified = [u for u in unclassified if u != f"{p.name}.{name}"]
    if unclassified:
        listing = ", ".join(unclassified[:20])
        if len(unclassified) > 20:
            listing += f" and {len(unclassified) - 20} more"
        if strict:
            problems.insert(0, f"{len(unclassified)} column(s) are neither masked nor kept: {listing}")
        else:
            log.warning("strict coverage is OFF: %d unclassified column(s) are copied unmasked: %s",
                        len(unclassified), listing)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s): {'; '.join(problems[1:4])})" if len(problems) > 1 else ""
        raise RulesError(f"{rules.path}: {problems[0]}{more}")
    return MaskPlan(manifest, rules, plans, _parents_first(plans, by_name), strict)


def _bind(p: TablePlan, manifest: Manifest, rules: Rules, own: dict[str, ColumnRule],
          inherited: dict[tuple[str, str], tuple[ColumnRule, tuple[str, str]]], key: bytes,
          problems: list[str]) -> list[str]:
    """Build the transformers of one table; returns the columns classified through foreign keys."""
    names = [c.name for c in p.entry.columns]
    infos = column_infos(p.entry)
    through_fk: list[str] = []
    for i, col in enumerate(names):
        crule = own.get(col)
        origin: tuple[str, str] | None = None
        if (p.name, col) in inherited:
            crule, origin = inherited[(p.name, col)]
            if p.action == "copy":
                p.action = "mask"
        if crule is None:
            if p.action == "mask":
                p.strategies[col] = "keep"
            continue
        info = infos[i]
        if origin is not None:
            # the referenced column's own view (unique, length): same input, same output
            parent = manifest.table(origin[0])
            if parent is not None:
                info = next(c for c in column_infos(parent) if c.name == origin[1])
        try:
            t = build_transformer(crule.transformer, crule.options, info, key)
        except RulesError as exc:
            problems.append(f"{p.name}.{col}: {exc}")
            continue
        if origin is not None and t.uses_row:
            problems.append(f"{p.name}.{col} references {origin[0]}.{origin[1]}, which is masked with "
                            f"{_describe(crule)}: that rule depends on the rest of its row, so referencing "
                            f"columns cannot follow it; mask {origin[0]}.{origin[1]} by its value alone")
            continue
        missing = [n for n in type(t).needs_columns(t.options) if n not in names]
        if missing:
            problems.append(f"{p.name}.{col}: the rule reads column {missing[0]!r}, which {p.name} does not have")
            continue
        label = _describe(crule) if origin is None else f"{_describe(crule)} (foreign key to {origin[0]}.{origin[1]})"
        p.masked.append(MaskedColumn(i, col, t, label, origin))
        p.strategies[col] = label
        if origin is not None:
            through_fk.append(col)
    masked_idx = {m.index for m in p.masked}
    for group in [p.entry.primary_key, *p.entry.unique]:
        idx = tuple(names.index(c) for c in group if c in names)
        if idx and masked_idx & set(idx):
            p.unique.append(idx)
    for fk in _foreign_keys(manifest, p.entry, rules):
        ref = manifest.table(fk.ref_table)
        if ref is None or ref is p.entry:
            continue
        ref_cols = fk.ref_columns if all(fk.ref_columns) else ref.primary_key
        if all(c in names for c in fk.columns):
            p.parents.append((tuple(names.index(c) for c in fk.columns), ref.name, tuple(ref_cols)))
    p.masked.sort(key=lambda m: _dependency_rank(m, p.masked))
    if p.action == "mask" and not p.masked and p.where is None:
        p.action = "copy"
    if p.where is not None and p.action == "copy":
        p.action = "mask"
    return through_fk


def _dependency_rank(m: MaskedColumn, masked: list[MaskedColumn]) -> int:
    needs = type(m.transformer).needs_columns(m.transformer.options)
    return 1 if any(other.name in needs for other in masked) else 0


def _parents_first(plans: list[TablePlan], by_name: dict[str, TablePlan]) -> list[int]:
    """Ordinals in an order where every parent comes before its children (cycles keep manifest order).

    The order matters only to subsetting (a ``where`` filter, which children of a filtered table
    follow): a cycle is worth a warning only then. Many schemas have one (Sakila's ``store`` and
    ``staff`` point at each other) and mask just as well without a filter."""
    subsetting = any(p.where is not None for p in plans)
    pending = {p.ordinal: {by_name[parent].ordinal for _i, parent, _c in p.parents if parent in by_name}
               for p in plans}
    order: list[int] = []
    while pending:
        ready = sorted(o for o, deps in pending.items() if not (deps & set(pending)))
        if not ready:
            cycle = sorted(pending)
            if subsetting:
                log.warning("foreign keys form a cycle between %s: subsetting does not follow those keys",
                            ", ".join(plans[o].name for o in cycle))
            ready = cycle
        for o in ready:
            order.append(o)
            del pending[o]
    return order


def check_rules(manifest: Manifest, rules: Rules) -> MaskPlan:
    """Check ``rules`` against a snapshot (coverage, columns, rule fit) without the masking key.

    Transformers need a key to be built; a throwaway one serves, as nothing is masked."""
    return plan_masking(manifest, rules, secrets.token_bytes(32))
