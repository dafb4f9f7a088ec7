"""The canonical column rule, and the expansion of the shorthands a rules file may use.

A column's rule may be written three ways, all expanding to one :class:`ColumnRule`:

- ``email: email``: the transformer name alone;
- ``email: {email: {keep_domain: true}}``: ``{name: options}``;
- ``email: {transformer: email, options: {keep_domain: true}}``: the canonical form.

``keep`` (the column is copied unchanged) is not a transformer: :func:`expand_rule` returns None for it.
A rule names a transformer of the registry (:mod:`datasafe.masking.transformers.base`), and a
transformer's options may hold rules again (``json`` paths), so the rule lives beside the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datasafe.masking.fakes import DEFAULT_LOCALE
from datasafe.masking.rules_yaml import Loc, did_you_mean
from datasafe.masking.transformers.base import TRANSFORMERS, Transformer, build_transformer
from datasafe.masking.types import ColumnInfo

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
        return build_transformer(self.transformer, self.options, column, key)

    def needs_columns(self) -> tuple[str, ...]:
        """Columns of the same row that must be final before this one (``template``)."""
        cls = TRANSFORMERS[self.transformer]
        return cls.needs_columns(cls.Options.model_validate(self.options))


def expand_rule(raw: Any, *, locale: str | None = None, loc: Loc | None = None) -> ColumnRule | None:
    """Expand a column rule as written to its canonical form; None for ``keep``.

    Every transformer's options are validated by its ``Options`` model here, and options that
    name a Faker locale get ``locale`` (the rules file's default) when they do not set one.

    Raises:
        RulesError: with the file, line and key of ``loc`` and, for a bad option, of the option.
    """
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
