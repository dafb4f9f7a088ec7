"""The C forms of transformers' first choices: which rule and options each kernel covers, and its data.

A kernel of :mod:`datasafe.masking._native` (``_native_rules.c``, ``_native_phone.c``) computes what a
rule's :meth:`~datasafe.masking.transformers.base.Transformer.first_from_digest` computes, for a
whole list of values, HMAC included. :func:`kernel` is the one place that decides whether a
transformer runs in C: it hands the kernel the transformer's own data (name pools, domains, the
lorem corpus, brand prefixes, phone metadata, the column's cut), so nothing of a rule is written
down twice. Tests compare every kernel with the rule's Python definition.

A kernel takes the UTF-8 text of a list of values and returns ``(outputs, missing)``: for every
value its first choice in stored form (printable ASCII, needing no escapes), or None at the
indexes listed in ``missing``, which are left to the Python definition. A kernel never gives a
blank value another value: it is its own output where it needs no escapes (empty, spaces), else
it is left to Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datasafe.masking import native, phone_native
from datasafe.masking.native import NativeFirst
from datasafe.masking.transformers.base import Transformer
from datasafe.masking.transformers.identifiers import CreditCard, NationalId, prefix_lengths
from datasafe.masking.transformers.person import Email
from datasafe.masking.transformers.phone import Phone
from datasafe.masking.transformers.text import Text
from datasafe.masking.types import cut_limit


def kernel(t: Transformer[Any]) -> NativeFirst | None:
    """The C form of ``t``'s first choice, where the C module is in use and covers the rule and its
    options; None otherwise (the block path then runs the Python definition)."""
    c, limit = native.RULES, cut_limit(t.column)
    if c is None or limit is None or not t.digest_based:
        return None
    bind = _KERNELS.get(type(t))
    return None if bind is None else bind(c, t, limit)


def _ssn_us(c: Any, t: Transformer[Any], limit: int) -> NativeFirst | None:
    assert isinstance(t, NationalId)
    if t.options.country != "US":
        return None
    key, keep_format = t.key, t.options.keep_format
    return lambda values: c.ssn_us(key, values, keep_format, limit)


def _card(c: Any, t: Transformer[Any], limit: int) -> NativeFirst | None:
    assert isinstance(t, CreditCard)
    if t.options.brand != "keep":
        return None
    key, prefixes = t.key, prefix_lengths()
    return lambda values: c.card(key, values, prefixes, limit)


def _email(c: Any, t: Transformer[Any], limit: int) -> NativeFirst | None:
    assert isinstance(t, Email)
    if t.options.keep_domain or t.column.max_length is not None:
        return None  # the input's domain, and cuts of the local part, are Python's
    firsts, lasts = ([name.encode() for name in names] for names in t.name_slugs())
    domains = [d.encode() for d in t.domains]
    key, unique = t.key, t.options.unique
    return lambda values: c.email(key, values, firsts, lasts, domains, unique, limit)


def _lorem(c: Any, t: Transformer[Any], limit: int) -> NativeFirst | None:
    assert isinstance(t, Text)
    text, starts = t.corpus()
    if starts.itemsize != 4 or not text.isascii() or not text.isprintable() or "\\" in text:
        return None  # words of the rule's own that the C code does not take
    stored, offsets = text.encode(), starts.tobytes()
    key, max_length = t.key, t.options.max_length or -1
    return lambda values: c.lorem(key, values, stored, offsets, max_length, limit)


def _phone(c: Any, t: Transformer[Any], limit: int) -> NativeFirst | None:
    assert isinstance(t, Phone)
    if phone_native.kernel() is None or not t.options.keep_format or not t.options.keep_country_code:
        return None
    return phone_native.column_function(t.key, t.region, limit)


_KERNELS: dict[type[Transformer[Any]], Callable[[Any, Transformer[Any], int], NativeFirst | None]] = {
    NationalId: _ssn_us,
    CreditCard: _card,
    Email: _email,
    Text: _lorem,
    Phone: _phone,
}
