"""The transformer registry: rule name → :class:`Transformer` subclass.

Importing this package registers every built-in transformer; each family lives in its own module.
A new transformer is a subclass of :class:`Transformer` decorated with ``@register("name")`` in a
module imported here: the rules loader, the JSON Schema and the reference documentation pick it up.
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
