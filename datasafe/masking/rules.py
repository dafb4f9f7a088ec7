"""Masking rules: the YAML file, its one canonical model, and checks against a snapshot's tables.

A rules file (format version 1) says, for every table, whether it is masked column by column,
truncated (schema kept, no rows) or excluded, and for every column of a masked table which
transformer masks it or that it is kept. See ``docs/masking.md`` for the format.

Loading expands every shorthand into :class:`Rules` / :class:`TableRule` / :class:`ColumnRule`
and validates each transformer's options; every error names the file, line and key.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_serializer

from datasafe.masking.errors import RulesError
from datasafe.masking.fakes import DEFAULT_LOCALE, check_locale
from datasafe.masking.masking_key import DEFAULT_KEY_ENV, MaskingKey, load_key
from datasafe.masking.rules_schema import rules_json_schema
from datasafe.masking.rules_yaml import Loc, did_you_mean, load_yaml
from datasafe.masking.schema_rules import SchemaRules, VirtualForeignKey, expand_schema_rules
from datasafe.masking.suggest import suggest_rules
from datasafe.masking.transformers.column_rule import ColumnRule, expand_rule
from datasafe.masking.types import ColumnInfo
from datasafe.yamlsafe import MAX_RULES_BYTES, read_text

__all__ = [
    "DEFAULT_KEY_ENV", "FORMAT_VERSION", "ColumnRule", "MaskingKey", "Rules", "TableRule", "VirtualForeignKey",
    "check_against_schema", "coverage", "load_key", "load_rules", "parse_rules", "rules_json_schema",
    "rules_sha256", "suggest_rules",
]

FORMAT_VERSION = 1
ACTIONS = ("mask", "truncate", "exclude")
_TOP_KEYS = ("version", "locale", "key_env", "key_file", "strict", "tables", "virtual_foreign_keys", "schema")
_TABLE_KEYS = ("action", "columns", "keep", "where")
_AUDIT_KEYS = ("accept_leaks",)  # see datasafe.masking.leaks
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PROBE_KEY = bytes(32)  # builds transformers to check them against columns; never masks data


class TableRule(BaseModel):
    """What happens to one table."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["mask", "truncate", "exclude"] = Field(
        "mask", description="mask: rows copied with the column rules applied; truncate: the table is created but "
                            "holds no rows; exclude: the table is not in the output at all")
    columns: dict[str, ColumnRule] = Field(default_factory=dict, description="masked columns and their rules")
    keep: set[str] = Field(default_factory=set, description="columns copied unchanged")
    where: str | None = Field(None, description="row filter (SQL condition) for a subset, evaluated by the pipeline")
    accept_leaks: dict[str, str] = Field(
        default_factory=dict, description="masked column → why the leak audit may find its original values in the "
                                          "output (e.g. common city names the generator also produces)")

    @field_serializer("keep")
    def _sorted(self, keep: set[str]) -> list[str]:
        return sorted(keep)

    def classify(self, column: str) -> ColumnRule | Literal["keep"] | None:
        """The column's rule, ``"keep"``, or None when the rules do not classify it."""
        if column in self.columns:
            return self.columns[column]
        return "keep" if column in self.keep else None


class Rules(BaseModel):
    """A loaded rules file in canonical form."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    locale: str = DEFAULT_LOCALE
    key_env: str | None = None
    key_file: str | None = None
    strict: bool = True
    tables: dict[str, TableRule] = Field(default_factory=dict)
    virtual_foreign_keys: list[VirtualForeignKey] = Field(default_factory=list)
    #: the ``schema`` key: comments, and rewrite / drop / accept of schema text (see masking.ddl)
    schema_rules: SchemaRules = Field(default_factory=SchemaRules)

    _source: str | None = PrivateAttr(None)
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str | None:
        """The file the rules were loaded from (None when built in code)."""
        return self._source

    @property
    def path(self) -> str:
        """The file the rules were loaded from, for messages (``<rules>`` when built in code)."""
        return self._source or "<rules>"

    def table_names(self) -> list[str]:
        """The table names the rules mention, as written (qualified or bare)."""
        return list(self.tables)

    def loc(self, *path: str | int) -> Loc:
        """The place of ``path`` (e.g. ``"tables", "public.customers"``) for error messages."""
        return Loc(self._source, self._lines, path)

    def table_key(self, table_name: str, bare_name: str | None = None) -> str | None:
        """The key under ``tables`` that applies: the qualified name, else the bare table name."""
        if table_name in self.tables:
            return table_name
        if bare_name is not None and bare_name in self.tables:
            return bare_name
        return None

    def rule_for(self, table_name: str, bare_name: str | None = None) -> TableRule | None:
        """The rule of a table by its qualified name (``public.customers``) or its bare name.

        The bare name (``customers``) applies when the rules do not name the table qualified;
        :func:`check_against_schema` reports a bare name that matches several tables.
        """
        key = self.table_key(table_name, bare_name)
        return None if key is None else self.tables[key]

    def key_path(self) -> Path | None:
        """``key_file`` resolved against the rules file's folder."""
        if self.key_file is None:
            return None
        path = Path(self.key_file).expanduser()
        if not path.is_absolute() and self._source is not None:
            path = Path(self._source).parent / path
        return path


def rules_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the rules file's bytes (recorded with a masked snapshot)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_rules(path: str | os.PathLike[str]) -> Rules:
    """Read and validate a rules file.

    Raises:
        RulesError: the file is missing or unreadable, is not valid YAML, or breaks the format;
            the message names file, line and key.
    """
    try:
        text = read_text(path, max_bytes=MAX_RULES_BYTES, error=RulesError, what="the rules file")
    except FileNotFoundError:
        raise RulesError(f"rules file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"rules file {path} cannot be read: {exc}") from None
    return parse_rules(text, source=str(path))


def parse_rules(text: str, source: str = "<rules>") -> Rules:
    """Validate rules given as YAML text; ``source`` names them in errors."""
    data, lines = load_yaml(text, source)
    root = Loc(source, lines)
    if not isinstance(data, Mapping):
        raise root.error("a rules file is a mapping (version, tables, ...)")
    for key in data:
        if key not in _TOP_KEYS:
            raise root.child(key).error(f"unknown key{did_you_mean(key, _TOP_KEYS)}; keys: {', '.join(_TOP_KEYS)}")
    version = data.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        where = root.child("version") if "version" in data else root
        raise where.error(f"version must be {FORMAT_VERSION}" + ("" if "version" in data else " (missing)"))
    locale = _string(data, "locale", root, None)
    if locale is None:  # absent, or `locale:` with no value
        locale = DEFAULT_LOCALE
    try:
        check_locale(locale)
    except ValueError as exc:
        raise root.child("locale").error(str(exc)) from None
    key_env = _string(data, "key_env", root, None)
    if key_env is not None and not _ENV_NAME.fullmatch(key_env):
        raise root.child("key_env").error("must be the name of an environment variable")
    key_file = _string(data, "key_file", root, None)
    if key_env is not None and key_file is not None:
        raise root.child("key_file").error("give key_env or key_file, not both")
    strict = data.get("strict", True)
    if not isinstance(strict, bool):
        raise root.child("strict").error("must be true or false")
    tables_raw = data.get("tables", {})
    if not isinstance(tables_raw, Mapping):
        raise root.child("tables").error("must be a mapping of table names to rules")
    tables = {name: _table(raw, locale, root.child("tables", name)) for name, raw in tables_raw.items()}
    vfks_raw = data.get("virtual_foreign_keys", [])
    if not isinstance(vfks_raw, list):
        raise root.child("virtual_foreign_keys").error("must be a list")
    vfks = [_model(VirtualForeignKey, raw, root.child("virtual_foreign_keys", i)) for i, raw in enumerate(vfks_raw)]
    schema_rules = expand_schema_rules(data.get("schema"), root.child("schema"))
    rules = Rules(locale=locale, key_env=key_env, key_file=key_file, strict=strict, tables=tables,
                  virtual_foreign_keys=vfks, schema_rules=schema_rules)
    rules._source = source
    rules._lines = lines
    return rules


def _string(data: Mapping[str, Any], key: str, loc: Loc, default: str | None) -> Any:
    value = data.get(key, default)
    if value is not None and not isinstance(value, str):
        raise loc.child(key).error("must be a string")
    return value


def _table(raw: Any, locale: str, loc: Loc) -> TableRule:
    if isinstance(raw, str):
        raw = {"action": raw}
    if not isinstance(raw, Mapping):
        raise loc.error("a table's rule is mask, truncate, exclude or a mapping with columns")
    for key in raw:
        if key not in _TABLE_KEYS and key not in _AUDIT_KEYS:
            raise loc.child(key).error(f"unknown key{did_you_mean(key, _TABLE_KEYS + _AUDIT_KEYS)}; "
                                       f"keys: {', '.join(_TABLE_KEYS)}")
    action = raw.get("action", "mask")
    if action not in ACTIONS:
        raise loc.child("action").error(f"unknown action {action!r}{did_you_mean(str(action), ACTIONS)}; "
                                        f"actions: {', '.join(ACTIONS)}")
    columns_raw = raw.get("columns") or {}
    keep_raw = raw.get("keep") or []
    if not isinstance(columns_raw, Mapping):
        raise loc.child("columns").error("must be a mapping of column names to rules")
    if not isinstance(keep_raw, list) or not all(isinstance(c, str) for c in keep_raw):
        raise loc.child("keep").error("must be a list of column names")
    if action != "mask" and (columns_raw or keep_raw):
        raise loc.child("columns" if columns_raw else "keep").error(
            f"a table with action {action} has no column rules")
    where = raw.get("where")
    if where is not None and not isinstance(where, str):
        raise loc.child("where").error("must be an SQL condition (a string)")
    accept = raw.get("accept_leaks") or {}
    if not isinstance(accept, Mapping) or not all(isinstance(c, str) for c in accept):
        raise loc.child("accept_leaks").error("must be a mapping of masked column names to reasons")
    for column, reason in accept.items():
        if not isinstance(reason, str) or not reason.strip():
            raise loc.child("accept_leaks", column).error("give the reason the leak is accepted (a non-empty string)")
    if action != "mask" and accept:
        raise loc.child("accept_leaks").error(f"a table with action {action} has no masked columns")
    columns: dict[str, ColumnRule] = {}
    keep = set(keep_raw)
    for column, spec in columns_raw.items():
        rule = expand_rule(spec, locale=locale, loc=loc.child("columns", column))
        if rule is None:
            keep.add(column)
        elif column in keep:
            raise loc.child("columns", column).error("the column is masked here and kept in `keep`")
        else:
            columns[column] = rule
    return TableRule(action=action, columns=columns, keep=keep, where=where, accept_leaks=dict(accept))


def _model(model: type[VirtualForeignKey], raw: Any, loc: Loc) -> VirtualForeignKey:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = tuple(p for p in error["loc"] if isinstance(p, (str, int)))
        raise loc.child(*path).error(str(error["msg"]).removeprefix("Value error, ")) from None


# --- checks against a snapshot's tables -------------------------------------------------------------

TableColumns = Sequence[tuple[str, Sequence[str | ColumnInfo]]]


def _names(columns: Sequence[str | ColumnInfo]) -> list[str]:
    return [c if isinstance(c, str) else c.name for c in columns]


def bare_name(table_name: str) -> str:
    """``public.customers`` → ``customers``; a SQLite name stays as it is."""
    return table_name.rsplit(".", 1)[-1]


def coverage(rules: Rules, tables: TableColumns) -> list[str]:
    """The columns the rules leave unclassified, as ``table.column``.

    A column of a masked table is classified when a rule masks or keeps it; truncated and
    excluded tables need no column rules; every column of a table the rules do not mention is
    unclassified. Strict rules refuse to run while this list is not empty.
    """
    out: list[str] = []
    for name, columns in tables:
        rule = rules.rule_for(name, bare_name(name))
        if rule is not None and rule.action != "mask":
            continue
        out.extend(f"{name}.{c}" for c in _names(columns) if rule is None or rule.classify(c) is None)
    return out


def check_against_schema(rules: Rules, tables: TableColumns) -> list[str]:
    """Problems of the rules against a snapshot's tables, one message each (empty: none).

    Reports rules naming a table or column that does not exist, bare table names that match
    several tables, virtual foreign keys that do not resolve, and templates that refer to
    missing columns. When columns are given as :class:`ColumnInfo`, each rule is also bound to
    its column: a rule that does not suit the column's type, ``null`` in a NOT NULL column, or a
    rule that cannot give distinct values in a unique column is reported too.
    """
    problems: list[str] = []
    by_name = {name: list(columns) for name, columns in tables}
    for key, table_rule in rules.tables.items():
        loc = rules.loc("tables", key)
        matches = [key] if key in by_name else [n for n in by_name if bare_name(n) == key]
        if not matches:
            problems.append(loc.error(f"no table {key!r} in the snapshot{did_you_mean(key, by_name)}").message)
            continue
        if len(matches) > 1:
            problems.append(loc.error(f"{key!r} matches tables {', '.join(sorted(matches))}: write the qualified "
                                      "name").message)
            continue
        table = matches[0]
        if rules.table_key(table, bare_name(table)) != key:
            continue  # a qualified entry for the same table wins; this bare one is unused
        problems.extend(_check_table(rules, key, table, table_rule, by_name[table]))
    for i, fk in enumerate(rules.virtual_foreign_keys):
        loc = rules.loc("virtual_foreign_keys", i)
        for field, table, columns in (("table", fk.table, fk.columns), ("ref_table", fk.ref_table, fk.ref_columns)):
            found = _resolve(table, by_name)
            if found is None:
                problems.append(loc.child(field).error(f"no table {table!r} in the snapshot").message)
                continue
            names = _names(by_name[found])
            problems.extend(loc.child(field).error(f"no column {c!r} in {found}").message
                            for c in columns if c not in names)
    return problems


def _resolve(name: str, by_name: Mapping[str, Any]) -> str | None:
    if name in by_name:
        return name
    bare = [n for n in by_name if bare_name(n) == name]
    return bare[0] if len(bare) == 1 else None


def _check_table(rules: Rules, key: str, table: str, rule: TableRule,
                 columns: Sequence[str | ColumnInfo]) -> list[str]:
    problems: list[str] = []
    names = _names(columns)
    infos = {c.name: c for c in columns if isinstance(c, ColumnInfo)}
    loc = rules.loc("tables", key)
    for column in sorted(rule.keep - set(names)):
        problems.append(loc.child("keep").error(f"no column {column!r} in {table}{did_you_mean(column, names)}")
                        .message)
    for column, column_rule in rule.columns.items():
        where = loc.child("columns", column)
        if column not in names:
            problems.append(where.error(f"no column {column!r} in {table}{did_you_mean(column, names)}").message)
            continue
        refers = "the template refers to" if column_rule.transformer == "template" else "the rule reads"
        problems.extend(where.error(f"{refers} column {needed!r}, which {table} does not have")
                        .message for needed in column_rule.needs_columns() if needed not in names)
        info = infos.get(column)
        if info is None:
            continue
        try:
            transformer = column_rule.build(info, _PROBE_KEY)
        except RulesError as exc:
            problems.append(where.error(exc.message).message)
            continue
        if info.unique and column_rule.transformer != "null" and not type(transformer).varies(transformer.options):
            problems.append(where.error(f"column {column} is unique, but rule {column_rule.transformer!r} gives "
                                        "the same output on every retry: use a keyed rule (hash, email, ...)")
                            .message)
    return problems
