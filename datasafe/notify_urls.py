"""Notification URLs (``notify.healthcheck_url``, ``notify.webhook_url``): checking them, deriving the
healthcheck ping URLs, and showing them in logs without their secret parts."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit, urlunsplit

HealthcheckKind = Literal["start", "success", "fail"]


def check_url(url: str) -> str:
    """Validate a ping URL (for configuration checks): ``http``/``https`` with a host.

    Raises:
        ValueError: naming what is wrong, without echoing the URL's path (it is a secret).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"a notification URL must start with http:// or https://, not {parts.scheme or '?'}://")
    if not parts.hostname:
        raise ValueError("a notification URL needs a host name")
    return url


def healthcheck_url_for(url: str, kind: HealthcheckKind) -> str:
    """``<url>/start``, ``<url>`` or ``<url>/fail`` (a query string stays at the end)."""
    if kind == "success":
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{kind}"))


def safe_url(url: str) -> str:
    """``https://hc-ping.com/…``: scheme and host only, for log lines."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme}://{host}{port}/…"
