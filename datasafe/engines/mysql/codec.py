"""The row encoding of MySQL and MariaDB snapshots: ``LOAD DATA``'s default tab-separated text."""

from __future__ import annotations

import re
from typing import ClassVar

from datasafe.engines.codec import TabText


class MysqlTsv(TabText):
    """``LOAD DATA`` default text format."""

    encoding = "mysql-tsv"
    _unescape_map: ClassVar[dict[str, str]] = {
        "0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "\\": "\\"}
    _escape_map: ClassVar[dict[str, str]] = {
        "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0", "\x1a": "\\Z"}
    _escape_re = re.compile(r"[\\\n\r\t\0\x1a]")
    _replacements = (("\\n", "\n"), ("\\t", "\t"), ("\\r", "\r"), ("\\0", "\0"), ("\\b", "\b"), ("\\Z", "\x1a"))
    _other_escape = re.compile(rb"\\(?![ntrb])")  # \0 is octal in Python, \Z not an escape
