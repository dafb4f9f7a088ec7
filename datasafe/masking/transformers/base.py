"""The transformer base class and the registry that maps rule names to transformers.

A transformer masks the cells of one column. It is built once per column from its validated
options, the column's :class:`~datasafe.masking.types.ColumnInfo` and the secret key, then called
for every cell. New transformers plug in with ``@register("name")``; the rules loader, the docs
reference and the JSON Schema all read the registry.
"""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from datasafe.masking import keyed
from datasafe.masking.errors import RulesError, UnmaskableValue
from datasafe.masking.fakes import DEFAULT_LOCALE, check_locale
from datasafe.masking.rules_yaml import Loc, did_you_mean
from datasafe.masking.types import EMPTY_ROW, ColumnInfo, RowView, fitter

TEXT_KINDS = frozenset({"text", "other"})
NUMBER_KINDS = frozenset({"int", "decimal", "float"})
MEMO_SIZE = 16_384  # outputs remembered per transformer (values longer than MEMO_MAX_VALUE are not)
MEMO_MAX_VALUE = 256


class Options(BaseModel):
    """Base of every transformer's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(Options):
    """This transformer takes no options."""


class LocaleOptions(Options):
    """Options of transformers that draw from Faker's locale data."""

    locale: str | None = Field(None, validate_default=True,
                               description="Faker locale, e.g. `de_DE`; default: the rules file's `locale`")

    @field_validator("locale", mode="after")
    @classmethod
    def _locale(cls, value: str | None, info: ValidationInfo) -> str:
        context = info.context if isinstance(info.context, Mapping) else {}
        return check_locale(value or context.get("locale") or DEFAULT_LOCALE)

    @property
    def faker_locale(self) -> str:
        return self.locale or DEFAULT_LOCALE


class EmptyOptions(Options):
    """Options of transformers that may also replace empty (and blank) values."""

    replace_empty: bool = Field(False, description="also replace empty and blank text (by default `''` and "
                                                   "white space stay as they are)")


class NullOptions(EmptyOptions):
    """Options of transformers that can also replace NULL (and empty values)."""

    # Not spelled `null: replace`: most YAML parsers read a bare `null` key as a null key.
    replace_null: bool = Field(False, description="also replace NULL (by default NULL stays NULL)")


OptionsT = TypeVar("OptionsT", bound=Options)


def row_cell(row: RowView, column: str) -> str | None:
    """Another column's final value in the row: masked when it is masked already, else as it was."""
    masked = row.masked
    return masked[column] if column in masked else row.original.get(column)


def is_blank(value: str) -> bool:
    """Empty, or nothing but white space (``str.isspace``): a value that carries no personal data."""
    return not value or value.isspace()


class Transformer(ABC, Generic[OptionsT]):
    """Masks the cells of one column.

    Subclasses set ``name`` (through :func:`register`), ``Options``, and implement :meth:`mask`
    for non-NULL values. Calls go through :meth:`__call__`, which keeps NULL as NULL (unless
    :meth:`mask_null` says otherwise) and a blank value (empty or white space only, see
    :func:`is_blank`) as it is (unless the option ``replace_empty`` says otherwise), remembers
    recent outputs, and passes every output through :func:`~datasafe.masking.types.fit`.

    Class attributes:
        name: the rule name users write.
        Options: the pydantic model of the options (``extra="forbid"``, documented defaults).
        kinds: the column kinds it accepts (None: any); see :data:`~datasafe.masking.types.KINDS`.
        deterministic: the output depends only on (key, value, options, attempt); False when it
            also depends on the rest of the row (``template``), so it cannot be applied to a
            referencing column on its own.
        example: a rules-file line for the reference documentation.
    """

    name: ClassVar[str]
    Options: ClassVar[type[Options]] = NoOptions
    kinds: ClassVar[frozenset[str] | None] = TEXT_KINDS
    deterministic: ClassVar[bool] = True
    example: ClassVar[str] = ""

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        """Bind the options to a column and a key.

        Raises:
            RulesError: the options are invalid, or the rule does not suit the column (kind, NOT NULL).
        """
        self.options: OptionsT = _coerce_options(type(self), options)
        self.column = column
        self.key = key
        if self.kinds is not None and column.kind not in self.kinds:
            raise RulesError(f"column {column.name} ({column.type}): rule {self.name!r} does not take {column.kind} "
                             f"columns (it takes {', '.join(sorted(self.kinds))})")
        self._fit = fitter(column)
        #: outputs depend on the rest of the row (see ``deterministic``); nested rules and options can make it so
        self.uses_row = not self.deterministic
        #: a blank value is its own first choice (see :func:`is_blank`); the rule's ``replace_empty`` turns it off
        self.keeps_blank = not getattr(self.options, "replace_empty", False)
        # first choices (attempt 0) are remembered; alternatives are rare and computed each time
        self._memo: Callable[[str], str | None] | None = None
        if self.deterministic:
            self._memo = functools.lru_cache(maxsize=MEMO_SIZE)(self._mask_first)

    @classmethod
    def needs_columns(cls, options: BaseModel) -> tuple[str, ...]:
        """Other columns of the row that must be final before this one (``template``'s references)."""
        return ()

    @classmethod
    def expand_options(cls, options: dict[str, Any], *, locale: str | None, loc: Loc) -> dict[str, Any]:
        """Expand shorthands nested inside the options (``json``'s rules per path) before validation."""
        return options

    @classmethod
    def varies(cls, options: BaseModel) -> bool:
        """Whether ``attempt > 0`` yields other outputs, i.e. the rule can serve a unique column."""
        return True

    @abstractmethod
    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        """The masked form of a non-NULL ``value`` (before :func:`fit`)."""

    def mask_null(self, row: RowView, attempt: int) -> str | None:
        """What NULL becomes: NULL, unless a transformer's options ask otherwise."""
        return None

    def __call__(self, value: str | None, row: RowView = EMPTY_ROW, attempt: int = 0) -> str | None:
        """Mask one cell; ``attempt > 0`` asks for an alternative output (unique columns)."""
        if value is None:
            return self._fit(self.mask_null(row, attempt))
        if attempt == 0:
            if self.keeps_blank and (not value or value.isspace()):
                return value  # no personal data in it; an alternative (attempt > 0) is masked as usual
            if self._memo is not None and len(value) <= MEMO_MAX_VALUE:
                return self._memo(value)
        return self._fit(self.mask(value, row, attempt))

    def _mask_first(self, value: str) -> str | None:
        return self._fit(self.mask(value, EMPTY_ROW, 0))

    def first_choice(self) -> Callable[[str], str | None]:
        """``lambda value: self(value)`` for a non-NULL value at attempt 0, without the memo.

        For a rule whose first choice is drawn from the value's HMAC, :meth:`first_choice_digested`
        with the digest taken here; the result equals ``self(value)`` exactly.
        """
        digested = self.first_choice_digested()
        if digested is not None:
            digest = keyed.hmac_sha256(self.key)
            return lambda value: digested(value, digest(value, 0))
        return self._keep_blanks(self._mask_first)

    def first_from_digest(self, value: str, digest: bytes) -> str | None:
        """The first choice (attempt 0, before :func:`fit`) of a value that is not blank, from its
        ``digest`` (:func:`~datasafe.masking.keyed.digest` of key and value).

        Rules whose first choice depends on nothing but the value and its HMAC define it here, once:
        their :meth:`mask` calls it, and the pipeline calls it (through :meth:`first_choice_digested`)
        with the HMACs of a whole block of values taken at once, or runs its C form
        (:mod:`datasafe.masking.transformers.kernels`), which tests compare with it. Other rules
        leave it undefined.
        """
        raise NotImplementedError(f"rule {self.name!r} does not draw its first choice from the digest")

    @property
    def digest_based(self) -> bool:
        """Whether the first choice is :meth:`first_from_digest` (a rule that defines it and does not use the row)."""
        return type(self).first_from_digest is not Transformer.first_from_digest and not self.uses_row

    def first_choice_digested(self) -> Callable[[str, bytes], str | None] | None:
        """``(value, digest) -> self(value)`` for a non-NULL value at attempt 0, where ``digest`` is
        :func:`~datasafe.masking.keyed.digest` of (key, value): :meth:`first_from_digest` with what
        every rule does with a blank value and the output fitted to the column. None for rules that
        are not :attr:`digest_based`.
        """
        if not self.digest_based:
            return None
        define, fit = self.first_from_digest, self._fit
        if not self.keeps_blank:
            return lambda value, digest: fit(define(value, digest))
        return lambda value, digest: value if not value or value.isspace() else fit(define(value, digest))

    def _keep_blanks(self, first: Callable[[str], str | None]) -> Callable[[str], str | None]:
        """``first`` for any value: a blank value stays as it is (unless the rule replaces those)."""
        if not self.keeps_blank:
            return first
        return lambda value: value if not value or value.isspace() else first(value)

    def null_choice(self) -> str | None:
        """What NULL becomes at attempt 0 (for a transformer that does not use the row)."""
        return self._fit(self.mask_null(EMPTY_ROW, 0))

    def first_choice_table(self) -> list[str | None] | None:
        """For rules whose first choice depends on the value only through its HMAC: their outputs.

        The first choice for a value that is not blank is then ``table[int.from_bytes(digest(key,
        value)[:8], "big") % len(table)]``, so the pipeline can take it without decoding the value
        (names, streets, addresses drawn from a pool of Faker values); a blank value stays as it is
        (``native.pick(..., keep_blank=True)`` gives it back). None for the other rules.
        """
        return None

    def unmaskable(self, reason: str) -> UnmaskableValue:
        """The error for a value this rule cannot mask; names the column, never the value."""
        return UnmaskableValue(f"column {self.column.name}: rule {self.name!r} cannot mask a value: {reason}")

    @classmethod
    def summary(cls) -> str:
        """The first paragraph of the class docstring."""
        return inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].replace("\n", " ")


TRANSFORMERS: dict[str, type[Transformer[Any]]] = {}

T = TypeVar("T", bound=type[Transformer[Any]])


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a transformer available under rule name ``name``."""

    def add(cls: T) -> T:
        if name in TRANSFORMERS or name == "keep":
            raise ValueError(f"transformer name {name!r} is taken")
        cls.name = name
        TRANSFORMERS[name] = cls
        return cls

    return add


def _coerce_options(cls: type[Transformer[Any]], options: BaseModel | Mapping[str, Any]) -> Any:
    if isinstance(options, cls.Options):
        return options
    raw = options.model_dump() if isinstance(options, BaseModel) else dict(options)
    try:
        return cls.Options.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RulesError(f"rule {cls.name!r}: option {where}: {first['msg']}") from exc


def build_transformer(transformer: str, options: BaseModel | Mapping[str, Any], column: ColumnInfo,
                      key: bytes) -> Transformer[Any]:
    """Look up a transformer by rule name and bind it to a column and key.

    Raises:
        RulesError: unknown name, invalid options, or a rule that does not suit the column.
    """
    cls = TRANSFORMERS.get(transformer)
    if cls is None:
        raise RulesError(f"unknown transformer {transformer!r}{did_you_mean(transformer, TRANSFORMERS)}")
    return cls(options, column, key)
