"""``json``: mask values inside a JSON document by path, leaving the rest of the text as it was."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from datasafe.masking import jsonpath
from datasafe.masking.errors import RulesError
from datasafe.masking.rules_yaml import Loc
from datasafe.masking.transformers.base import Options, Transformer, register
from datasafe.masking.transformers.column_rule import ColumnRule, expand_rule
from datasafe.masking.types import ColumnInfo, RowView

# The column type a JSON value is handed to its path's rule as.
_VALUE_TYPES = {"text": "text", "int": "bigint", "float": "double precision", "bool": "boolean", "json": "jsonb"}


class JsonOptions(Options):
    paths: dict[str, ColumnRule] = Field(
        min_length=1, description="JSON path → rule, e.g. `{'$.contact.email': email, '$.tags[*]': {hash: "
                                  "{length: 8}}}`. Paths: `$.a.b`, `$.a[*].b`, `$.a[0]`, `$..email`, `$['a b']`")
    on_invalid: Literal["error", "null", "empty"] = Field(
        "error", description="a value that is not JSON: stop with an error, or write NULL, or `{}`")

    @field_validator("paths", mode="before")
    @classmethod
    def _expand(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, Mapping):
            return value
        context = info.context if isinstance(info.context, Mapping) else {}
        return {path: _path_rule(path, rule, context.get("locale"), None) for path, rule in value.items()}

    @field_validator("paths")
    @classmethod
    def _parse(cls, value: dict[str, ColumnRule]) -> dict[str, ColumnRule]:
        for path in value:
            jsonpath.parse_path(path)
        return value


def _path_rule(path: str, raw: Any, locale: str | None, loc: Loc | None) -> ColumnRule:
    if loc is not None:
        try:
            jsonpath.parse_path(path)
        except ValueError as exc:
            raise loc.error(str(exc)) from None
    rule = expand_rule(raw, locale=locale, loc=loc)
    if rule is None:
        raise (loc or Loc()).error("keep is the default inside a JSON document: leave the path out")
    return rule


@register("json")
class JsonDocument(Transformer[JsonOptions]):
    """Mask values inside a JSON document, each path with its own rule.

    Only the text of the matched values changes: key order, spacing and everything else stay
    byte for byte. A matched value reaches its rule as text (strings), as a number (integer or
    float column), as `true`/`false`, or as JSON text (objects and arrays); numbers stay numbers
    when the rule answers with one. JSON `null` stays `null`. Paths that match nothing are fine.
    """

    Options = JsonOptions
    kinds = frozenset({"json", "text", "other"})
    example = ("prefs: {json: {paths: {'$.contact.email': email, '$.tags[*]': {hash: {length: 8}}, "
               "'$..phone': phone}}}")

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        self.paths = [(jsonpath.parse_path(p), p, rule) for p, rule in self.options.paths.items()]
        self.rules: dict[tuple[str, str], Transformer[Any]] = {}
        for _, path, rule in self.paths:
            errors = []
            for kind, type_name in _VALUE_TYPES.items():
                try:
                    self.rules[(path, kind)] = rule.build(ColumnInfo(f"{column.name}{path}", type_name), key)
                except RulesError as exc:
                    errors.append(exc)
            if len(errors) == len(_VALUE_TYPES):
                raise errors[0]
        if any(t.uses_row for t in self.rules.values()):
            self.uses_row = True
            self._memo = None

    @classmethod
    def expand_options(cls, options: dict[str, Any], *, locale: str | None, loc: Loc) -> dict[str, Any]:
        paths = options.get("paths")
        if isinstance(paths, Mapping):
            options = {**options, "paths": {
                path: _path_rule(path, rule, locale, loc.child("paths", path)) for path, rule in paths.items()}}
        return options

    @classmethod
    def needs_columns(cls, options: BaseModel) -> tuple[str, ...]:
        names: list[str] = []
        for rule in JsonOptions.model_validate(options.model_dump()).paths.values():
            names.extend(rule.needs_columns())
        return tuple(dict.fromkeys(names))

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        try:
            root = jsonpath.parse(value)
        except ValueError:
            if self.options.on_invalid == "error":
                raise self.unmaskable("not JSON") from None
            return None if self.options.on_invalid == "null" else "{}"
        edits: list[tuple[int, int, str]] = []
        for steps, path, _ in self.paths:
            for node in jsonpath.select(root, steps):
                if any(start < node.end and node.start < end for start, end, _ in edits):
                    continue  # inside (or around) a value an earlier path already masks
                edits.append((node.start, node.end, self._mask_node(value, node, path, row, attempt)))
        for start, end, text in sorted(edits, reverse=True):
            value = value[:start] + text + value[end:]
        return value

    def _mask_node(self, text: str, node: jsonpath.Node, path: str, row: RowView, attempt: int) -> str:
        raw = text[node.start:node.end]
        if node.kind == "string":
            kind, cell = "text", json.loads(raw)
        elif node.kind == "number":
            kind, cell = ("int" if raw.lstrip("-").isdigit() else "float"), raw
        elif node.kind == "literal":
            if raw == "null":
                return raw
            kind, cell = "bool", raw
        else:
            kind, cell = "json", raw
        rule = self.rules.get((path, kind)) or self.rules.get((path, "text"))
        if rule is None:
            raise self.unmaskable(f"the rule of {path} does not take a JSON {node.kind}")
        out = rule(cell, row, attempt)
        if out is None:
            return "null"
        if node.kind == "number" and jsonpath.NUMBER.fullmatch(out):
            return out
        if node.kind == "literal" and out in ("true", "false"):
            return out
        if node.kind in ("object", "array"):
            try:
                json.loads(out)
                return out
            except ValueError:
                pass
        return json.dumps(out, ensure_ascii=False)
