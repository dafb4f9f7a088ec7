"""``template``: a value built from other, already masked, columns of the same row."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, Field, field_validator

from datasafe.masking import keyed
from datasafe.masking.errors import RulesError
from datasafe.masking.fakes import ascii_fold, slug
from datasafe.masking.transformers.base import Options, Transformer, register
from datasafe.masking.types import ColumnInfo, RowView

FILTERS: dict[str, Callable[[str], str]] = {
    "lower": str.lower,
    "upper": str.upper,
    "title": str.title,
    "strip": str.strip,
    "ascii": ascii_fold,
    "slug": slug,
    "alnum": lambda s: slug(s, ""),
    "initial": lambda s: s.strip()[:1],
}
HASH_FIELD = "_hash"  # 8 keyed hex digits of the column's own value (changes with the attempt)
_FIELD = re.compile(r"\{\{|\}\}|\{([^{}|]+)((?:\|[^{}|]+)*)\}")


def parse_template(template: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Split into (literal, field, filters) parts; ValueError names a bad field or filter."""
    parts: list[tuple[str, str, tuple[str, ...]]] = []
    literal = ""
    pos = 0
    for m in _FIELD.finditer(template):
        literal += template[pos:m.start()]
        pos = m.end()
        if m.group(0) in ("{{", "}}"):
            literal += m.group(0)[0]
            continue
        field = m.group(1).strip()
        filters = tuple(f.strip() for f in m.group(2).split("|")[1:])
        unknown = [f for f in filters if f not in FILTERS]
        if unknown:
            raise ValueError(f"unknown filter {unknown[0]!r} in {m.group(0)!r}; filters: {', '.join(FILTERS)}")
        parts.append((literal, field, filters))
        literal = ""
    rest = template[pos:]
    if "{" in rest or "}" in rest:
        raise ValueError("unbalanced brace (write {{ and }} for literal braces)")
    parts.append((literal + rest, "", ()))
    return parts


class TemplateOptions(Options):
    template: str = Field(description="text with `{column}` fields, each optionally piped through filters: "
                                      "`{first_name|lower}`; `{_hash}` is 8 keyed hex digits of this column's own "
                                      f"value. Filters: {', '.join(FILTERS)}")

    @field_validator("template")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_template(value)
        return value


@register("template")
class Template(Transformer[TemplateOptions]):
    """A value built from other columns of the same row, after they are masked.

    `{first_name|lower}.{last_name|lower}@example.com` reads the *masked* first and last name, so
    the address matches the masked person. The pipeline masks the referenced columns first;
    a referenced column that is kept is read unchanged. NULL stays NULL; a NULL field is empty.
    Use `{_hash}` in unique columns: it changes with each retry.
    """

    Options = TemplateOptions
    deterministic = False
    example = "email: {template: {template: '{first_name|slug}.{last_name|slug}.{_hash}@example.com'}}"

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        self.parts = parse_template(self.options.template)
        if column.name in self.needs_columns(self.options):
            raise RulesError(f"column {column.name}: a template cannot refer to its own column")

    @classmethod
    def needs_columns(cls, options: BaseModel) -> tuple[str, ...]:
        template = options.template if isinstance(options, TemplateOptions) else str(options.model_dump()["template"])
        names = [f for _, f, _ in parse_template(template) if f and f != HASH_FIELD]
        return tuple(dict.fromkeys(names))

    @classmethod
    def varies(cls, options: BaseModel) -> bool:
        return HASH_FIELD in (f for _, f, _ in parse_template(str(options.model_dump()["template"])))

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        out = []
        for literal, field, filters in self.parts:
            out.append(literal)
            if not field:
                continue
            if field == HASH_FIELD:
                text = keyed.hexdigest(self.key, value, attempt)[:8]
            else:
                try:
                    text = row.masked[field] or ""
                except KeyError:
                    raise RulesError(f"column {self.column.name}: template needs column {field!r}, which is "
                                     "not masked or kept before it") from None
            for name in filters:
                text = FILTERS[name](text)
            out.append(text)
        return "".join(out)
