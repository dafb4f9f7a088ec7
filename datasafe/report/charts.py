"""The report's plots: matplotlib's SVG backend, one small chart per question, inlined in the page.

Why SVG and not a JavaScript chart: the page must open anywhere, offline, with no script at all
(the page runs none, see :mod:`datasafe.report.html`), and print as it shows. Every chart says
what it shows without hovering: axis labels with units, a legend, the last value written next to
the last point, one marker per snapshot. Text stays text (``svg.fonttype: none``: a chart costs
about 20 KB, and the browser can find its words), and every chart of a source shares the report
period as its time axis, so charts of different sources line up.

Names that come from the databases (table names) are hostile input: matplotlib escapes them as
XML text, and reading ``$...$`` as mathematics is switched off.

matplotlib is imported only when a chart is drawn (it is the ``report`` extra, and the CLI's
start-up time matters); without it the HTML report fails with :class:`DependencyError`.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from datasafe.errors import DependencyError
from datasafe.report.model import SourceReport

#: series colours (the Okabe–Ito palette: told apart with the common colour-vision deficiencies)
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
WIDTH_IN, HEIGHT_IN = 4.8, 2.7
LABEL_CHARS = 36
_FLOAT = re.compile(r"(\d+\.\d)\d+")
_PATH_DATA = re.compile(r'( d="[^"]*")')


@dataclass
class Chart:
    """One chart of a source: an SVG element, or a sentence saying why there is none."""

    title: str
    svg: str | None = None
    note: str | None = None


def _matplotlib() -> Any:
    try:
        import matplotlib  # deferred: start-up time (an optional extra)
    except ImportError:
        raise DependencyError("the HTML report draws its plots with matplotlib, which is not installed",
                              hint="pip install 'datasafe[report]', or use --format json") from None
    return matplotlib


def _unit(values: Sequence[float], units: Sequence[tuple[str, float]]) -> tuple[str, float]:
    """The largest unit in which the largest value is at least 1."""
    top = max((abs(v) for v in values), default=0.0)
    chosen = units[0]
    for unit in units:
        if top >= unit[1]:
            chosen = unit
    return chosen


SIZE_UNITS = (("B", 1.0), ("KiB", 1024.0), ("MiB", 1024.0**2), ("GiB", 1024.0**3), ("TiB", 1024.0**4))
TIME_UNITS = (("seconds", 1.0), ("minutes", 60.0), ("hours", 3600.0))
COUNT_UNITS = (("rows", 1.0), ("thousand rows", 1e3), ("million rows", 1e6), ("billion rows", 1e9))


def _digits(ticks: Sequence[float]) -> int:
    """Decimals that tell the ticks apart (steps are 1, 2 or 5 times a power of ten)."""
    if len(ticks) < 2 or ticks[1] <= ticks[0]:
        return 0
    return max(0, min(6, -math.floor(math.log10(ticks[1] - ticks[0]) + 1e-9)))


def _number(v: float, digits: int) -> str:
    return f"{v:,.{digits}f}"


def _significant(v: float) -> str:
    """Three significant digits (``35.6``, ``1.29``, ``225``, ``12,480``): the value of a point."""
    if v == 0:
        return "0"
    return f"{v:,.{max(0, 2 - math.floor(math.log10(abs(v))))}f}"


def _label(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


Series = tuple[str, list[tuple[datetime, float]], str]  #: (legend label, points, marker)


class Plotter:
    """Draws one line chart per call on a figure it reuses (a new figure per chart costs more)."""

    def __init__(self, period: tuple[datetime, datetime]) -> None:
        mpl = _matplotlib()
        from matplotlib.figure import Figure  # deferred: start-up time

        self.mpl = mpl
        self.period = period
        self.figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=72)

    def draw(self, series: list[Series], ylabel: str, units: Sequence[tuple[str, float]], salt: str,
             title: str, *, legend: bool = True) -> str:
        import matplotlib.dates  # deferred: start-up time
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        mdates: Any = matplotlib.dates
        mpl = self.mpl
        rc = {"svg.fonttype": "none", "svg.hashsalt": salt, "text.parse_math": False, "font.size": 8.5,
              "font.family": "sans-serif", "axes.edgecolor": "#888888", "axes.linewidth": 0.6,
              "xtick.color": "#444444", "ytick.color": "#444444", "axes.labelcolor": "#222222"}
        unit, scale = _unit([v for _, pts, _ in series for _, v in pts], units)
        with mpl.rc_context(rc):
            fig = self.figure
            fig.clear()
            rows = math.ceil(len(series) / 2)
            top = 1 - (0.1 + 0.075 * rows) if legend else 0.93
            fig.subplots_adjust(left=0.14, right=0.97, bottom=0.17, top=top)
            ax: Any = fig.add_subplot()
            last: list[tuple[datetime, float, str]] = []
            for i, (name, pts, marker) in enumerate(series):
                xs = [t for t, _ in pts]
                ys = [v / scale for _, v in pts]
                colour = COLOURS[i % len(COLOURS)]
                ax.plot(xs, ys, color=colour, marker=marker, markersize=3.2, linewidth=1.3,
                        label=_label(name), clip_on=False)
                if pts:
                    last.append((xs[-1], ys[-1], colour))
            ax.set_xlim(self.period[0], self.period[1])
            ax.set_ylim(bottom=0)
            ax.margins(y=0.15)
            locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10]))
            ax.get_ylim()  # settles the autoscaled limits, and so the ticks
            digits = _digits(list(ax.yaxis.get_major_locator()()))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _number(v, digits)))
            placed: list[float] = []  # where labels went (points from the bottom): none may cover another
            ends = sorted(last, key=lambda p: float(ax.transData.transform((mdates.date2num(p[0]), p[1]))[1]))
            for x, y, colour in ends:
                at = float(ax.transData.transform((mdates.date2num(x), y))[1]) + 4
                while any(abs(at - other) < 9 for other in placed):
                    at += 9
                placed.append(at)
                ax.annotate(_significant(y), (x, y), xytext=(-3, at - float(ax.transData.transform(
                    (mdates.date2num(x), y))[1])), textcoords="offset points", ha="right", va="bottom",
                    fontsize=7.5, color=colour)
            ax.set_xlabel("date (UTC)")
            ax.set_ylabel(f"{ylabel} ({unit})" if ylabel else unit)
            ax.grid(True, color="#e3e3e3", linewidth=0.6)
            ax.set_axisbelow(True)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            if legend:
                ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, fontsize=7.5, frameon=False,
                          handlelength=1.6, borderaxespad=0.2, columnspacing=1.2)
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
        return _tidy(buf.getvalue(), title)


def _tidy(svg: str, title: str) -> str:
    """The ``<svg>`` element alone (no XML prolog), fluid width, coordinates to a tenth of a point."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = _PATH_DATA.sub(lambda m: _FLOAT.sub(r"\1", m.group(1)), svg)
    head, rest = svg.split(">", 1)
    head = re.sub(r' (width|height)="[^"]*"', "", head)
    return f'{head} role="img" aria-label="{escape(title, quote=True)}">{rest.strip()}'


def source_charts(source: SourceReport, plot: Plotter) -> list[Chart]:
    """The charts of one source: stored size, durations, rows of the largest tables."""
    name = source.name
    out: list[Chart] = []
    points = source.history
    title = "Stored size of each snapshot"
    if points:
        out.append(Chart(title, plot.draw([("stored", [(p.started_at, float(p.stored_bytes)) for p in points], "o")],
                                          "stored size", SIZE_UNITS, f"{name}/size", title, legend=False)))
    else:
        out.append(Chart(title, note="no snapshot in the period"))

    title = "Backup and restore-test durations"
    timed = [v for v in source.restore_tests if v.seconds is not None]
    series: list[Series] = []
    if points:
        series.append(("backup", [(p.started_at, p.backup_seconds) for p in points], "o"))
    if timed:
        series.append(("restore test (verify --deep)", [(v.time, float(v.seconds or 0)) for v in timed], "s"))
    note = None
    if source.restore_tests and not timed:
        note = "the restore tests of the period did not record their duration"
    if series:
        out.append(Chart(title, plot.draw(series, "duration", TIME_UNITS, f"{name}/durations", title), note=note))
    else:
        out.append(Chart(title, note="no backup or timed restore test in the period"))

    title = "Rows of the largest tables"
    if source.tables:
        out.append(Chart(title, plot.draw([(t.name, [(when, float(n)) for when, n in t.points], "o")
                                           for t in source.tables], "", COUNT_UNITS, f"{name}/rows", title)))
    else:
        why = next((n.split(": ", 1)[1] for n in source.notes if n.startswith("rows per table: ")), "no table")
        out.append(Chart(title, note=why))
    return out
