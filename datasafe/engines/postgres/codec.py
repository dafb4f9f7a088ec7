"""The row encoding of PostgreSQL snapshots: ``COPY ... TO STDOUT`` text."""

from __future__ import annotations

import re
from typing import ClassVar

from datasafe.engines.codec import TabText


class PgCopyText(TabText):
    """``COPY ... TO STDOUT`` text format."""

    encoding = "pg-copy-text"
    _unescape_map: ClassVar[dict[str, str]] = {
        "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
    _escape_map: ClassVar[dict[str, str]] = {
        "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f", "\v": "\\v"}
    _escape_re = re.compile(r"[\\\n\r\t\b\f\v]")
    _replacements = (("\\n", "\n"), ("\\t", "\t"), ("\\r", "\r"), ("\\b", "\b"), ("\\f", "\f"), ("\\v", "\v"))
    _other_escape = re.compile(rb"\\(?![ntrbfv])")
