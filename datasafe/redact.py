"""Keep passwords out of logs, errors and manifests."""

from __future__ import annotations

import re

# scheme://user:password@host  ->  scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<post>@)")
# libpq keyword form and query parameters: password=secret, sslpassword=secret
_KV_PASSWORD = re.compile(
    # (a value already shown as *** keeps what follows it: "(...?password=***) started")
    r"(?P<pre>\b(?:[a-z_]*password|passwd|pwd)\s*=\s*)"
    r"(?P<pw>'(?:[^'\\]|\\.)*'|\*\*\*(?=[\s&;)\",]|$)|[^\s&;]+)", re.I)

MASK = "***"


def redact(text: str) -> str:
    """Return ``text`` with every password in a URL or ``password=`` pair replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['pre']}{MASK}{m['post']}", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['pre']}{MASK}", text)
