"""The canonical column rule, and the expansion of the shorthands a rules file may use.

A column's rule may be written three ways, all expanding to one :class:`ColumnRule`:

- ``email: email``: the transformer name alone;
- ``email: {email: {keep_domain: true}}``: ``{name: options}``;
- ``email: {transformer: email, options: {keep_domain: true}}``: the canonical form.

``keep`` (the column is copied unchanged) is not a transformer: :func:`expand_rule` returns None for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from datasafe.masking.fakes import DEFAULT_LOCALE
from datasafe.masking.located import Loc, did_you_mean
from datasafe.masking.types import ColumnInfo

if TYPE_CHECKING:
    from datasafe.masking.transformers.base import Transformer

KEEP = "keep"


class ColumnRule(BaseModel):
    """How one column is masked: a transformer and its validated options.

    ``options`` holds only what differs from the defaults (see :func:`canonical_options`), so two
    rules mean the same exactly when they are equal.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    transformer: str = Field(description="the rule name of a transformer")
    options: dict[str, Any] = Field(default_factory=dict, description="the transformer's options that differ "
                                                                      "from the defaults")

    def build(self, column: ColumnInfo, key: bytes) -> Transformer[Any]:
        """A :class:`~datasafe.masking.transformers.Transformer` for ``column`` under ``key``."""
        from datasafe.masking.transformers import build_transformer

        return build_transformer(self.transformer, self.options, column, key)

    def needs_columns(self) -> tuple[str, ...]:
        """Columns of the same row that must be final before this one (``template``)."""
        from datasafe.masking.transformers import TRANSFORMERS

        cls = TRANSFORMERS[self.transformer]
        return cls.needs_columns(cls.Options.model_validate(self.options))


class VirtualForeignKey(BaseModel):
    """A relationship the schema does not declare, to mask like a foreign key (child uses parent's rule)."""

    model_config = ConfigDict(extra="forbid")

    table: str = Field(description="the referencing table")
    columns: list[str] = Field(min_length=1, description="its referencing columns")
    ref_table: str = Field(description="the referenced table")
    ref_columns: list[str] = Field(min_length=1, description="the referenced columns, in the same order")

    @model_validator(mode="after")
    def _same_length(self) -> VirtualForeignKey:
        if len(self.columns) != len(self.ref_columns):
            raise ValueError("columns and ref_columns must have the same length")
        return self


def expand_rule(raw: Any, *, locale: str | None = None, loc: Loc | None = None) -> ColumnRule | None:
    """Expand a column rule as written to its canonical form; None for ``keep``.

    Every transformer's options are validated by its ``Options`` model here, and options that
    name a Faker locale get ``locale`` (the rules file's default) when they do not set one.

    Raises:
        RulesError: with the file, line and key of ``loc`` and, for a bad option, of the option.
    """
    from datasafe.masking.transformers import TRANSFORMERS

    loc = loc or Loc()
    if raw is None:
        raise loc.error("no rule given", hint="write a transformer name, keep, or 'null' (quoted) for NULL")
    if isinstance(raw, ColumnRule):
        name, options, options_loc = raw.transformer, dict(raw.options), loc.child("options")
    elif isinstance(raw, str):
        if raw == KEEP:
            return None
        name, options, options_loc = raw, {}, loc
    elif isinstance(raw, Mapping) and "transformer" in raw:
        extra = sorted(set(raw) - {"transformer", "options"})
        if extra:
            raise loc.child(extra[0]).error(f"unexpected key {extra[0]!r} (the canonical form has only "
                                            "'transformer' and 'options')")
        name, options, options_loc = raw["transformer"], raw.get("options") or {}, loc.child("options")
        if not isinstance(name, str):
            raise loc.child("transformer").error("the transformer must be a name")
    elif isinstance(raw, Mapping) and len(raw) == 1:
        name, options = next(iter(raw.items()))
        options = options if options is not None else {}
        options_loc = loc.child(name)
    elif isinstance(raw, Mapping):
        raise loc.error(f"a rule maps one transformer to its options; found {len(raw)} keys "
                        f"({', '.join(map(str, raw))})")
    else:
        raise loc.error(f"a rule is a transformer name or a mapping, not {type(raw).__name__}")
    if name == KEEP:
        if options:
            raise options_loc.error("keep takes no options")
        return None
    cls = TRANSFORMERS.get(name)
    if cls is None:
        raise loc.error(f"unknown transformer {name!r}{did_you_mean(name, [*TRANSFORMERS, KEEP])}")
    if not isinstance(options, Mapping):
        raise options_loc.error(f"the options of {name!r} must be a mapping, not {type(options).__name__}")
    options = cls.expand_options(dict(options), locale=locale, loc=options_loc)
    try:
        model = cls.Options.model_validate(options, context={"locale": locale})
    except ValidationError as exc:
        raise _options_error(exc, name, cls.Options.model_fields, options_loc) from None
    return ColumnRule(transformer=name, options=canonical_options(model))


def canonical_options(model: BaseModel) -> dict[str, Any]:
    """The options that differ from their defaults, as JSON-like values.

    A locale equal to the built-in default (``en_US``) is left out too, so ``email: email`` is
    ``{transformer: email, options: {}}`` whatever the spelling; a transformer built from these
    options behaves exactly like one built from the full set.
    """
    options = model.model_dump(mode="json", exclude_defaults=True)
    if options.get("locale") == DEFAULT_LOCALE:
        del options["locale"]
    return options


def _options_error(exc: ValidationError, name: str, fields: Mapping[str, Any], loc: Loc) -> Exception:
    error = exc.errors()[0]
    path = tuple(p for p in error["loc"] if isinstance(p, (str, int)))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden" and path:
        option = str(path[0])
        known = ", ".join(fields) or "none"
        return loc.child(*path).error(f"unknown option {option!r} for {name}{did_you_mean(option, fields)}; "
                                      f"options: {known}")
    if error["type"] == "missing" and path:
        return loc.error(f"{name} needs option {path[0]!r}")
    if path:
        return loc.child(*path).error(f"option {'.'.join(map(str, path))}: {message}")
    return loc.error(message) if loc.path else loc.error(f"{name}: {message}")


class SchemaRules(BaseModel):
    """What a masked copy does with the schema's own text (the top-level ``schema`` key).

    Objects are named as ``datasafe scan`` and :mod:`datasafe.masking.ddl` name them, e.g.
    ``comment on column public.customers.email``, ``default of public.customers.contact``,
    ``view public.vip``, ``policy p_self on public.customers``, ``enum public.mood``.
    """

    model_config = ConfigDict(extra="forbid")

    comments: Literal["strip", "keep"] = Field(
        "strip", description="strip: comments are left out of the masked schema (those named under rewrite or "
                             "accept stay); keep: comments stay, and are checked like other schema text")
    rewrite: dict[str, str] = Field(
        default_factory=dict, description="object → its new text: a comment's text, an enum's labels (one per "
                                          "line), or the SQL that replaces the object's text as scan shows it")
    drop: list[str] = Field(default_factory=list, description="objects left out of the masked schema (views, "
                                                              "functions, policies, triggers, indexes, ...)")
    accept: dict[str, str] = Field(
        default_factory=dict, description="object → why its text may stay as it is (a reason is required)")

    def named(self) -> dict[str, str]:
        """Every object the rules name → the key naming it (rewrite, drop or accept)."""
        return {**{n: "accept" for n in self.accept}, **{n: "drop" for n in self.drop},
                **{n: "rewrite" for n in self.rewrite}}


def expand_schema_rules(raw: Any, loc: Loc) -> SchemaRules:
    """The ``schema`` key of a rules file, checked: known keys, strings, a reason for each accept,
    each object under one key only.

    Raises:
        RulesError: with the file, line and key.
    """
    if raw is None:
        return SchemaRules()
    if not isinstance(raw, Mapping):
        raise loc.error("must be a mapping (comments, rewrite, drop, accept)")
    keys = tuple(SchemaRules.model_fields)
    for key in raw:
        if key not in keys:
            raise loc.child(key).error(f"unknown key{did_you_mean(str(key), keys)}; keys: {', '.join(keys)}")
    comments = raw.get("comments", "strip")
    if comments not in ("strip", "keep"):
        raise loc.child("comments").error("must be strip or keep")
    rewrite, accept = (raw.get(k) or {} for k in ("rewrite", "accept"))
    drop = raw.get("drop") or []
    for key, value in (("rewrite", rewrite), ("accept", accept)):
        if not isinstance(value, Mapping):
            raise loc.child(key).error("must be a mapping of object names to text")
        for name, text in value.items():
            if not isinstance(text, str) or (key == "accept" and not text.strip()):
                what = "a reason why its text may stay" if key == "accept" else "the new text (a string)"
                raise loc.child(key, str(name)).error(f"must be {what}")
    if not isinstance(drop, list) or not all(isinstance(d, str) for d in drop):
        raise loc.child("drop").error("must be a list of object names")
    seen: dict[str, str] = {}
    for key, names in (("rewrite", list(rewrite)), ("drop", drop), ("accept", list(accept))):
        for name in names:
            if name in seen:
                raise loc.child(key, name).error(f"{name!r} is also under {seen[name]}: name an object once")
            seen[name] = key
    return SchemaRules(comments=comments, rewrite=dict(rewrite), drop=list(drop), accept=dict(accept))
