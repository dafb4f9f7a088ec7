"""The transformer registry: rule name → :class:`Transformer` subclass.

Importing this package registers every built-in transformer; each family lives in its own module.
A new transformer is a subclass of :class:`Transformer` decorated with ``@register("name")`` in a
module imported here: the rules loader, the JSON Schema and the reference documentation pick it up.

- ``base``: :class:`Transformer`, its options models, the registry and ``@register``
- ``column_rule``: the canonical column rule (a transformer and its options) and the expansion of shorthands
- ``basic``: simple replacements: keyed hash, fixed value, NULL, empty, (partial) redaction, regex
- ``identifiers``: identifiers with structure and check digits: national ids, payment cards, IBANs, UUIDs
- ``jsondoc``: rules for values inside JSON documents, by path
- ``kernels``: the C forms of first choices: which rule and options each covers, bound to the rule's data
- ``location``: where people live: addresses, postcodes, IP addresses
- ``noise``: numbers moved by up to ±N %, dates and timestamps by up to ±N days
- ``person``: people and organisations: names, e-mail addresses, user names, companies, Faker providers
- ``phone``: phone numbers that stay valid for their region
- ``template``: a value built from other, already masked, columns of the same row
- ``temporal``: dates and timestamps as text, rewritten in place
- ``text``: lorem ipsum of the same length as the input
"""

from __future__ import annotations

from datasafe.masking.transformers import (  # noqa: F401  (imported to register their transformers)
    basic,
    identifiers,
    jsondoc,
    location,
    noise,
    person,
    phone,
    template,
    temporal,
    text,
)
from datasafe.masking.transformers.base import (
    TRANSFORMERS,
    LocaleOptions,
    NoOptions,
    NullOptions,
    Options,
    Transformer,
    build_transformer,
    register,
)

__all__ = [
    "TRANSFORMERS",
    "LocaleOptions",
    "NoOptions",
    "NullOptions",
    "Options",
    "Transformer",
    "build_transformer",
    "register",
]
