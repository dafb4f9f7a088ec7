"""What a rules file says besides the columns' rules: relationships the schema does not declare
(``virtual_foreign_keys``) and what happens to the schema's own text (the top-level ``schema`` key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datasafe.masking.rules_yaml import Loc, did_you_mean


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
