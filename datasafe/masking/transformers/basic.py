"""Simple replacements: keyed hash, fixed value, NULL, empty, (partial) redaction, regex."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, Field, field_validator

from datasafe.masking import keyed
from datasafe.masking.errors import RulesError
from datasafe.masking.transformers.base import EmptyOptions, NullOptions, Options, Transformer, register
from datasafe.masking.types import ColumnInfo, RowView


class HashOptions(Options):
    length: int | None = Field(None, ge=4, le=64, description="hex digits kept; default: 64, or the column's "
                                                              "maximum length when shorter")
    prefix: str = Field("", description="written before the digits (counts towards the column's length)")
    upper: bool = Field(False, description="upper-case hex digits")


@register("hash")
class Hash(Transformer[HashOptions]):
    """The keyed HMAC-SHA256 of the value in hex: equal inputs give equal outputs everywhere.

    In an integer column the output is a keyed non-negative integer within the column's range.
    """

    Options = HashOptions
    kinds = frozenset({"text", "other", "int"})
    example = "password_hash: hash\napi_token: {hash: {length: 16, prefix: 'tok_'}}"

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        digest = keyed.digest(self.key, value, attempt)
        if self.column.kind == "int":
            bounds = self.column.int_bounds() or (0, 2**63 - 1)
            return str(int.from_bytes(digest[:8], "big") % (bounds[1] + 1))
        o = self.options
        length = o.length or 64
        if self.column.max_length is not None:
            length = min(length, max(1, self.column.max_length - len(o.prefix)))
        text = digest.hex()[:length]
        return o.prefix + (text.upper() if o.upper else text)


class FixedOptions(NullOptions):
    value: str = Field(description="the replacement, as database text (`0`, `2000-01-01`, `t`, `redacted`)")

    @field_validator("value", mode="before")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("write booleans as the database does, quoted: 't', 'f', '0' or '1'")
        return str(value) if isinstance(value, (int, float)) else value


@register("fixed")
class Fixed(Transformer[FixedOptions]):
    """The same value for every row (NULL stays NULL unless `replace_null`, blanks unless `replace_empty`)."""

    Options = FixedOptions
    kinds = None
    example = "country: {fixed: {value: XX}}\nconsent: {fixed: {value: 'f', replace_null: true}}"

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        if not _parses_as(self.options.value, column.kind):
            raise RulesError(f"column {column.name} ({column.type}): fixed value is not a {column.kind}")

    @classmethod
    def varies(cls, options: BaseModel) -> bool:
        return False

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        return self.options.value

    def mask_null(self, row: RowView, attempt: int) -> str | None:
        return self.options.value if self.options.replace_null else None


def _parses_as(value: str, kind: str) -> bool:
    try:
        if kind == "int":
            int(value)
        elif kind in ("decimal", "float"):
            Decimal(value)
        elif kind == "date":
            dt.date.fromisoformat(value)
    except (ValueError, InvalidOperation):
        return False
    return True


@register("null")
class Null(Transformer[EmptyOptions]):
    """NULL for every row (only in columns that allow NULL)."""

    Options = EmptyOptions
    kinds = None
    example = "fax: 'null'"

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        if not column.nullable:
            raise RulesError(f"column {column.name} is NOT NULL: rule 'null' cannot apply (use empty or fixed)")

    @classmethod
    def varies(cls, options: BaseModel) -> bool:
        return False

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        return None


@register("empty")
class Empty(Transformer[NullOptions]):
    """The empty string; in a JSON column `{}` (or `[]` when the value is an array)."""

    Options = NullOptions
    kinds = frozenset({"text", "other", "json"})
    example = "notes: empty"

    @classmethod
    def varies(cls, options: BaseModel) -> bool:
        return False

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        if self.column.kind == "json":
            return "[]" if value.lstrip().startswith("[") else "{}"
        return ""

    def mask_null(self, row: RowView, attempt: int) -> str | None:
        if not self.options.replace_null:
            return None
        return "{}" if self.column.kind == "json" else ""


class RedactOptions(Options):
    keep_first: int = Field(0, ge=0, description="characters kept at the start")
    keep_last: int = Field(0, ge=0, description="characters kept at the end")
    char: str = Field("*", min_length=1, max_length=1, description="the character written instead")
    keep_separators: bool = Field(False, description="keep characters that are neither letters nor digits "
                                                     "(`**** **** **** 1111`)")


@register("redact")
class Redact(Transformer[RedactOptions]):
    """Every character replaced by `char`, except the first `keep_first` and last `keep_last`.

    Not keyed and not unique: two values of the same length and ends redact alike.
    """

    Options = RedactOptions
    example = "card_number: {redact: {keep_last: 4, keep_separators: true}}"

    @classmethod
    def varies(cls, options: BaseModel) -> bool:
        return False

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        o = self.options
        end = len(value) - o.keep_last
        return "".join(
            ch if i < o.keep_first or i >= end or (o.keep_separators and not ch.isalnum()) else o.char
            for i, ch in enumerate(value))


class RegexOptions(Options):
    pattern: str = Field(description="a Python regular expression")
    replacement: str = Field(description=r"the replacement; `\1` or `\g<1>`, `\g<name>` insert groups "
                                                 r"(write `\g<1>0` when digits follow)")
    ignore_case: bool = Field(False, description="match regardless of case")
    count: int = Field(0, ge=0, description="replace at most this many matches (0: all)")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value


@register("regex")
class Regex(Transformer[RegexOptions]):
    """Replace what a regular expression matches (e.g. keep a prefix, blank out the rest)."""

    Options = RegexOptions
    kinds = None
    example = r"""reference: {regex: {pattern: '^([A-Z]{2})\d+$', replacement: '\g<1>000000'}}"""

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        self.regex = re.compile(self.options.pattern, re.IGNORECASE if self.options.ignore_case else 0)
        try:
            self.regex.sub(self.options.replacement, "")
        except (re.error, IndexError) as exc:
            raise RulesError(f"rule 'regex': invalid replacement: {exc}") from None

    @classmethod
    def varies(cls, options: BaseModel) -> bool:
        return False

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        try:
            return self.regex.sub(self.options.replacement, value, count=self.options.count)
        except (re.error, IndexError) as exc:
            raise self.unmaskable(f"replacement failed ({exc})") from None
