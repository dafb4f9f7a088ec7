"""The JSON Schema of the rules *file* (shorthands included), generated from pydantic models.

``masking_rules/schema.json`` is this function's output; a test keeps the two equal. Editors
with YAML language support validate and complete a rules file that names it:
``# yaml-language-server: $schema=../masking_rules/schema.json``.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model

from datasafe.masking.schema_rules import SchemaRules, VirtualForeignKey
from datasafe.masking.transformers import TRANSFORMERS
from datasafe.masking.transformers.column_rule import KEEP

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _file_model() -> type[BaseModel]:
    names = sorted(TRANSFORMERS)
    forbid = ConfigDict(extra="forbid")
    shorthands: list[Any] = []
    canonicals: list[Any] = []
    for name in names:
        cls = TRANSFORMERS[name]
        doc = cls.summary()
        options_type: Any = Optional[cls.Options]  # noqa: UP045
        # the field is named "options" and spelled `name` in the file: "json" would shadow BaseModel.json
        shorthand: dict[str, Any] = {"options": (options_type, Field(alias=name, title=name,
                                                                     description=f"options of {name}"))}
        canonical: dict[str, Any] = {
            "transformer": (Literal[name], Field(description="the transformer")),
            "options": (options_type, Field(None, description=f"options of {name}")),
        }
        shorthands.append(create_model(f"{_title(name)}Shorthand", __doc__=doc, __config__=ConfigDict(
            extra="forbid", title=f"{name} (shorthand)"), **shorthand))
        canonicals.append(create_model(f"{_title(name)}Rule", __doc__=doc, __config__=ConfigDict(
            extra="forbid", title=name), **canonical))
    rule_name = Literal[tuple([*names, KEEP])]  # type: ignore[valid-type]
    spec_type = Union[rule_name, Union[tuple(shorthands)], Union[tuple(canonicals)]]  # type: ignore[valid-type]  # noqa: UP007

    class ColumnSpec(RootModel[spec_type]):  # type: ignore[valid-type]
        """A column's rule: `keep`, a transformer name, `{name: options}` or `{transformer, options}`."""

    class Table(BaseModel):
        """A table masked column by column (or truncated / excluded)."""

        model_config = forbid
        action: Literal["mask", "truncate", "exclude"] = Field(
            "mask", description="mask: rows copied with the column rules applied; truncate: the table is created "
                                "without rows; exclude: the table is left out")
        columns: dict[str, ColumnSpec] = Field(default_factory=dict, description="column name → rule")
        keep: list[str] = Field(default_factory=list, description="columns copied unchanged")
        where: Optional[str] = Field(None, description="SQL condition selecting the rows to copy")  # noqa: UP045
        accept_leaks: dict[str, str] = Field(
            default_factory=dict, description="masked column → the reason the leak audit may find its original "
                                              "values in the output (reported, does not fail the run)")

    class RulesFile(BaseModel):
        """datasafe masking rules (format version 1)."""

        model_config = ConfigDict(extra="forbid", title="datasafe masking rules")
        version: Literal[1] = Field(description="format version of the rules file")
        locale: str = Field("en_US", description="default Faker locale of the rules that draw names and places")
        key_env: Optional[str] = Field(None, description="environment variable holding the masking key "  # noqa: UP045
                                                         "(default DATASAFE_MASKING_KEY)")
        key_file: Optional[str] = Field(None, description="file holding the masking key, relative to the "  # noqa: UP045
                                                          "rules file")
        strict: bool = Field(True, description="refuse to run while a column of a masked table is neither masked "
                                               "nor kept")
        tables: dict[str, Union[Literal["mask", "truncate", "exclude"], Table]] = Field(  # noqa: UP007
            default_factory=dict, description="qualified (public.customers) or bare table name → rule")
        virtual_foreign_keys: list[VirtualForeignKey] = Field(
            default_factory=list, description="relationships the schema does not declare; the referencing "
                                              "columns get the referenced columns' rule")
        # "schema" would shadow BaseModel.schema: the field is named schema_ and spelled schema in the file
        schema_: SchemaRules = Field(default_factory=SchemaRules, alias="schema", description=(
            "the schema's own text: comments stripped or kept; rewrite, drop or accept objects whose text holds "
            "personal data"))

    return RulesFile


def rules_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a rules file, every transformer's options included."""
    schema = _file_model().model_json_schema()
    defs = schema.get("$defs", {})
    json_options = defs.get("JsonOptions", {}).get("properties", {}).get("paths")
    if json_options is not None:  # a path's rule is written like a column's
        json_options["additionalProperties"] = {"$ref": "#/$defs/ColumnSpec"}
        defs.pop("ColumnRule", None)
    return {"$schema": SCHEMA_DIALECT, **schema}


def rules_json_schema_text() -> str:
    """:func:`rules_json_schema` as the text of ``masking_rules/schema.json``."""
    return json.dumps(rules_json_schema(), indent=2, ensure_ascii=False) + "\n"
