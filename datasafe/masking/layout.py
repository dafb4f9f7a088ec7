"""Layouts: a value with the characters of one class (digits, or letters and digits) left out.

Card numbers, phone numbers and national ids keep their input's separators: the new characters
go where the old ones were. A layout is a ``str.format`` template with one ``{}`` per such
character; layouts of ASCII values are remembered by their shape, since a column holds few.

A digit is any Unicode decimal digit (``str.isdecimal``: ``0``-``9``, ``٣``, ``३``, ``３``, ...),
so no script's digits survive masking. :func:`fill` writes a new digit in the script of the
digit it replaces: the value keeps its look, and every script's digits form a run of ten
consecutive code points, so the conversion is exact. Letters are ASCII letters only.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable, Sequence
from typing import NamedTuple

_FIELD = 0x80  # a byte no ASCII text contains: marks a character to replace in a shape
_DIGITS = string.digits.encode()
_ALNUM = (string.ascii_letters + string.digits).encode()
_DIGIT_SHAPE = bytes.maketrans(_DIGITS, bytes([_FIELD]) * len(_DIGITS))
_ALNUM_SHAPE = bytes.maketrans(_ALNUM, bytes([_FIELD]) * len(_ALNUM))
_NOT_DIGITS = bytes(b for b in range(256) if b not in _DIGITS)
_NOT_ALNUM = bytes(b for b in range(256) if b not in _ALNUM)
_MAX_SHAPES = 4096


class Layout(NamedTuple):
    """A ``str.format`` template with a field per replaced character, and where those characters are."""

    template: str
    fields: int
    #: the index in the value of each replaced character
    positions: tuple[int, ...]


_layouts: dict[bytes, Layout] = {}


def ascii_digits(value: str) -> bytes:
    """The ASCII digits of ``value`` in order (UTF-8 never puts an ASCII byte inside another character)."""
    return value.encode().translate(None, _NOT_DIGITS)


def digits(value: str) -> str:
    """Every decimal digit of ``value`` in order, as ASCII digits (``'+٣٣ 1'`` → ``'331'``)."""
    if value.isascii():
        return ascii_digits(value).decode()
    return "".join(str(unicodedata.decimal(ch)) for ch in value if ch.isdecimal())


def ascii_alnum(value: str) -> str:
    """The ASCII letters and digits of ``value`` in order."""
    return value.encode().translate(None, _NOT_ALNUM).decode()


def alnum(value: str) -> str:
    """The ASCII letters and the decimal digits (as ASCII digits) of ``value`` in order."""
    if value.isascii():
        return ascii_alnum(value)
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in value if _is_alnum(ch))


def digit_layout(value: str) -> Layout:
    """The template of ``value`` with a field per decimal digit, and the number of fields."""
    if not value.isascii():
        return _slow_layout(value, str.isdecimal)
    return _layout(value.encode().translate(_DIGIT_SHAPE))


def alnum_layout(value: str) -> Layout:
    """The template of ``value`` with a field per ASCII letter or decimal digit, and the number of fields."""
    if not value.isascii():
        return _slow_layout(value, _is_alnum)
    return _layout(value.encode().translate(_ALNUM_SHAPE))


def fill(layout: Layout, value: str, chars: Sequence[str]) -> str:
    """``layout`` (of ``value``) with ``chars`` in its fields; an ASCII digit that replaces a digit of
    another script is written in that script."""
    if value.isascii():
        return layout.template.format(*chars)
    return layout.template.format(*(same_script(new, value[at]) for new, at in zip(chars, layout.positions,
                                                                                   strict=True)))


def same_script(new: str, old: str) -> str:
    """The ASCII digit ``new`` in the script of the decimal digit ``old`` (else ``new`` itself)."""
    if old.isascii() or not old.isdecimal() or not ("0" <= new <= "9"):
        return new
    return chr(ord(old) - unicodedata.decimal(old) + ord(new) - 48)


def _is_alnum(ch: str) -> bool:
    return ch.isdecimal() or (ch.isascii() and ch.isalpha())


def _layout(shape: bytes) -> Layout:
    # the template depends on the shape only, whichever characters became fields
    known = _layouts.get(shape)
    if known is None:
        if len(_layouts) >= _MAX_SHAPES:
            _layouts.clear()
        template = shape.decode("latin-1").replace("{", "{{").replace("}", "}}").replace(chr(_FIELD), "{}")
        known = _layouts[shape] = Layout(template, shape.count(_FIELD),
                                         tuple(i for i, b in enumerate(shape) if b == _FIELD))
    return known


def _slow_layout(value: str, is_field: Callable[[str], bool]) -> Layout:
    parts = ["{}" if is_field(ch) else ch * 2 if ch in "{}" else ch for ch in value]
    positions = tuple(i for i, ch in enumerate(value) if is_field(ch))
    return Layout("".join(parts), len(positions), positions)
