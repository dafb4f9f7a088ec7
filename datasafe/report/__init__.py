"""The evidence report: ``collect`` gathers it, ``model`` holds it, ``charts`` plots it, ``html`` renders it."""

from __future__ import annotations

from datasafe.report.collect import build
from datasafe.report.html import render_html
from datasafe.report.model import Report

__all__ = ["Report", "build", "render_html"]
