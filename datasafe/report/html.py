"""The evidence report as one self-contained HTML page.

Self-contained: styles and plots (SVG) are inline, nothing is fetched, so the file can be
mailed, archived with an audit and opened offline years later. The page runs no script at all
and says so to the browser (a Content-Security-Policy that allows none), because most of what
it shows is text an attacker may have chosen: table names come from the databases, tags and
rules file names from whoever ran the commands, users, hosts and errors from the audit trail.
Every such value goes through :func:`_e` (HTML escaping, quotes included); the plots get their
text escaped by matplotlib's SVG writer.

Layout, top to bottom: what was read and when; the audit trail's integrity; a summary table of
every source with its status colour and the reason in words; one section per source with its
facts and plots; every mask and refresh; every policy decision; how to read it all.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from html import escape

from datasafe.humanize import age, count, size
from datasafe.report.charts import Chart, Plotter, source_charts
from datasafe.report.model import MaskEvent, PolicyEvent, Report, SourceReport, Verification

#: status colours (background of the status cells and badges; white text on each passes WCAG AA)
STATUS_COLOURS = {"green": "#1e7b34", "amber": "#a35200", "red": "#b3261e"}
CSP = "default-src 'none'; style-src 'unsafe-inline'"

CSS = """
:root { --ink: #1d1d1f; --muted: #5f6368; --line: #d9dce0; --soft: #f5f6f7; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1280px; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 32px 0 8px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta, .note, .muted { color: var(--muted); } .note { font-size: 12.5px; margin: 4px 0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; } td.when { white-space: nowrap; }
code, .id { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; word-break: break-all; }
td.status, .badge { color: #fff; font-weight: 700; text-transform: uppercase; letter-spacing: .04em;
                    white-space: nowrap; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 4px; font-size: 12px; vertical-align: middle; }
.status-green td.status, .badge.status-green { background: @green@; }
.status-amber td.status, .badge.status-amber { background: @amber@; }
.status-red td.status, .badge.status-red { background: @red@; }
.audit { padding: 8px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--soft); }
.audit.bad { border-color: @red@; }
ul.reasons { margin: 4px 0 8px; padding-left: 20px; }
table.facts th { width: 230px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr)); gap: 14px; margin-top: 8px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px 8px 4px; }
figure.chart figcaption { font-weight: 600; font-size: 13px; margin-bottom: 2px; }
figure.chart svg { display: block; width: 100%; height: auto; }
tr.verdict-refused td.verdict { color: @red@; font-weight: 700; }
tr.verdict-overridden td.verdict { color: @amber@; font-weight: 700; }
tr.verdict-allowed td.verdict { color: @green@; font-weight: 700; }
td.leak-failed { color: @red@; font-weight: 700; } td.leak-passed { color: @green@; font-weight: 700; }
td.leak-skipped { color: @amber@; font-weight: 700; }
section.source { border-top: 2px solid var(--line); margin-top: 28px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  section.source { break-before: page; }
  figure.chart, table.facts tr { break-inside: avoid; }
  .charts { grid-template-columns: repeat(3, 1fr); }
  td.status, .badge { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""
for _status, _colour in STATUS_COLOURS.items():
    CSS = CSS.replace(f"@{_status}@", _colour)


def _e(value: object) -> str:
    """``value`` as HTML text: escaped, quotes included (it may end up in an attribute)."""
    return escape("" if value is None else str(value), quote=True)


def _when(t: datetime | str | None) -> str:
    if t is None:
        return "-"
    if isinstance(t, str):
        try:
            parsed = datetime.fromisoformat(t)
        except ValueError:
            return t
        return f"{parsed:%Y-%m-%d %H:%M} UTC"
    return f"{t:%Y-%m-%d %H:%M} UTC"


def _seconds(s: float | None) -> str:
    if s is None:
        return "duration not recorded"
    if s < 60:
        return f"{s:.1f} s"
    return age(timedelta(seconds=s))


def _row(cells: Iterable[str], cls: str = "", attrs: str = "") -> str:
    return f'<tr class="{cls}"{attrs}>' + "".join(cells) + "</tr>"


def _td(value: object, cls: str = "") -> str:
    return f'<td class="{_e(cls)}">{_e(value)}</td>' if cls else f"<td>{_e(value)}</td>"


def render_html(report: Report) -> str:
    """The whole page (see the module docstring); draws the plots, so needs matplotlib."""
    plot = Plotter(_chart_period(report))
    counts = report.counts()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>datasafe evidence report: {_e(report.storage)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<header><h1>Backup evidence report</h1>",
        f'<p class="meta">Storage <code>{_e(report.storage)}</code>; generated {_e(_when(report.generated_at))} by '
        f"datasafe {_e(report.datasafe_version)} from {_e(count(report.manifests_read, 'manifest'))}, their "
        f"verification records and the audit trail. Period: the last {_e(report.period)} (since "
        f"{_e(_when(report.since))}). Freshness limit {_e(report.max_age)}; restore-test limit "
        f"{_e(report.restore_test_age)}.</p>",
        _audit(report),
        "</header>",
        '<section id="summary"><h2>Summary</h2>',
        f'<p>{_e(count(len(report.sources), "source"))}: {counts["red"]} red, {counts["amber"]} amber, '
        f'{counts["green"]} green.</p>',
        _summary(report),
        "</section>",
    ]
    for source in report.sources:
        parts.append(_source(source, source_charts(source, plot), report))
    parts += [_masks(report.masks), _policy(report.policy), _legend(report), "</body></html>"]
    return "\n".join(parts) + "\n"


def _chart_period(report: Report) -> tuple[datetime, datetime]:
    """The time axis every chart shares: from the first point of any source in the period (not
    the period's start, which would squeeze a short history against the right edge) to now."""
    end = report.generated_at
    times = [p.started_at for s in report.sources for p in s.history]
    times += [v.time for s in report.sources for v in s.restore_tests]
    start = max(report.since, min(times, default=report.since))
    pad = max((end - start) * 0.04, timedelta(hours=6))
    return start - pad, end + pad / 2


def _audit(report: Report) -> str:
    a = report.audit
    how = "chain and HMACs checked with the policy key" if a.hmac_checked else "chain checked (no policy key: " \
        "HMACs not checked)"
    if a.ok:
        head = f"; newest record <code>{_e(a.head)}</code>, SHA-256 <code>{_e(a.head_sha256)}</code>" if a.head else ""
        return (f'<p class="audit ok" id="audit">Audit trail: <strong>intact</strong> '
                f"({_e(count(a.records, 'record'))}; {_e(how)}){head}.</p>")
    items = "".join(f"<li>{_e(p)}</li>" for p in a.problems)
    return (f'<div class="audit bad" id="audit"><p>Audit trail: <strong>{_e(count(len(a.problems), "problem"))}'
            f"</strong> in {_e(count(a.records, 'record'))} ({_e(how)}). The events below come from a trail "
            f"that was changed after it was written:</p><ul>{items}</ul></div>")


def _summary(report: Report) -> str:
    head = ("<thead><tr><th>Source</th><th>Status</th><th>Why</th><th>Newest snapshot</th>"
            '<th class="num">Verified age</th><th>Last restore test</th></tr></thead>')
    rows = []
    for s in report.sources:
        newest = f"{_when(s.newest.finished_at)}" if s.newest else "none"
        verified = age(timedelta(seconds=s.verified_age_seconds)) if s.verified_age_seconds is not None else "-"
        test = _when(s.last_restore_test.time) if s.last_restore_test else (
            "never (not required of masked copies)" if s.masked_copy else "never")
        reasons = "".join(f"<div>{_e(r)}</div>" for r in s.reasons)
        rows.append(_row([f'<td><a href="#src-{_e(s.name)}">{_e(s.name)}</a></td>',
                          f'<td class="status">{_e(s.status)}</td>', f'<td class="why">{reasons}</td>',
                          _td(newest), _td(verified, "num"), _td(test)],
                         f"source-row status-{s.status}", f' data-source="{_e(s.name)}" data-status="{_e(s.status)}"'))
    return f'<table class="summary">{head}<tbody>{"".join(rows)}</tbody></table>'


def _verification(v: Verification | None, none: str) -> str:
    if v is None:
        return _e(none)
    sample = f" of {v.sample_percent:g}% of the chunks" if v.sample_percent else ""
    verdict = "passed" if v.ok else "FAILED"
    return (f"{_e(verdict)} {_e(_when(v.time))}: <code>{_e(v.mode)}</code>{_e(sample)} of snapshot "
            f'<span class="id">{_e(v.snapshot_id)}</span>; {_e(count(v.chunks, "chunk"))}, '
            f"{_e(count(v.tables, 'table'))}, {_e(count(v.rows, 'row'))}; {_e(_seconds(v.seconds))}; "
            f"on host {_e(v.host or '?')}")


def _source(s: SourceReport, charts: list[Chart], report: Report) -> str:
    facts: list[tuple[str, str]] = []
    kind = "masked copy" if s.masked_copy else "configured source" if s.configured else "source in the storage"
    facts.append(("Kind", _e(f"{kind}; {s.engine or '?'} database {s.database or '?'}")))
    if s.newest is not None:
        n = s.newest
        tags = f"; tags {', '.join(n.tags)}" if n.tags else ""
        facts.append(("Newest snapshot", f'<span class="id">{_e(n.snapshot_id)}</span>, taken '
                      f"{_e(_when(n.started_at))} in {_e(_seconds(n.backup_seconds))}; {_e(count(n.tables, 'table'))}, "
                      f"{_e(count(n.rows, 'row'))}, {_e(size(n.stored_bytes))} stored "
                      f"({_e(size(n.raw_bytes))} raw){_e(tags)}"))
    else:
        facts.append(("Newest snapshot", "none"))
    if s.verified_age_seconds is not None:
        facts.append(("Freshness", _e(f"the newest verified snapshot {s.newest_verified} is "
                                      f"{age(timedelta(seconds=s.verified_age_seconds))} old; limit {report.max_age}"
                                      + (" (not applied to masked copies)" if s.masked_copy else ""))))
    else:
        facts.append(("Freshness", "no verified snapshot"))
    facts.append(("Last passed verification", _verification(s.last_verify, "none")))
    facts.append(("Last passed restore test", _verification(s.last_restore_test, "none (verify --deep never passed)")))
    if s.failures:
        items = "".join(f"<li>{_verification(v, '')}: {_e('; '.join(v.problems[:2]) or 'no detail')}</li>"
                        for v in s.failures[:10])
        more = f"<li>{_e(count(len(s.failures) - 10, 'more'))}</li>" if len(s.failures) > 10 else ""
        facts.append(("Failed verifications in the period", f"<ul>{items}{more}</ul>"))
    else:
        facts.append(("Failed verifications in the period", "none"))
    if s.last_backup_failure:
        f = s.last_backup_failure
        facts.append(("Last backup attempt", _e(f"{f.get('outcome')} at {_when(str(f.get('time')))}: "
                                                f"{f.get('error') or '-'} (exit {f.get('exit_code')}) "
                                                f"by {f.get('user')}@{f.get('host')}")))
    r = s.retention
    policy = f"<code>{_e(r.policy)}</code>" if r.policy else "none configured"
    facts.append(("Retention", f"policy {policy}; {_e(count(r.stored, 'snapshot'))} stored, {r.kept:,} kept by the "
                  f"policy, {r.beyond_policy:,} beyond it (not yet pruned), {r.removed:,} removed since backed up "
                  "(pruned or forgotten, by the audit trail)" + (f"; {_e(r.problem)}" if r.problem else "")))
    p = s.protection
    new = "encrypted" if p.encryption_configured else "not encrypted (no encryption: in datasafe.yml)"
    facts.append(("Encryption", _e(f"{p.encrypted:,} of {count(p.snapshots, 'snapshot')} encrypted (age); newest "
                                   f"{'encrypted' if p.newest_encrypted else 'not encrypted'}; new snapshots {new}")))
    facts.append(("Authenticity", _e(f"{p.signed:,} of {count(p.snapshots, 'manifest')} signed with the policy key")))
    lock = (f"{p.object_lock}; {p.locked:,} snapshots under lock now" if p.object_lock else
            "not used (local storage, or s3.object_lock_mode not set)")
    facts.append(("S3 Object Lock", _e(lock)))
    for note in s.notes:
        facts.append(("Note", _e(note)))
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in facts)
    reasons = "".join(f"<li>{_e(x)}</li>" for x in s.reasons)
    figures = []
    for c in charts:
        body = c.svg or ""
        note = f'<p class="note">{_e(c.note)}</p>' if c.note else ""
        figures.append(f'<figure class="chart"><figcaption>{_e(c.title)}</figcaption>{body}{note}</figure>')
    return (f'<section class="source" id="src-{_e(s.name)}" data-source="{_e(s.name)}">'
            f'<h2>{_e(s.name)} <span class="badge status-{_e(s.status)}">{_e(s.status)}</span></h2>'
            f'<ul class="reasons">{reasons}</ul><table class="facts">{rows}</table>'
            f'<div class="charts">{"".join(figures)}</div></section>')


def _masks(events: list[MaskEvent]) -> str:
    head = ("<thead><tr><th>Time</th><th>Operation</th><th>Outcome</th><th>From</th><th>Masked snapshot</th>"
            "<th>Rules (SHA-256)</th><th>Strict</th><th>Leak audit</th><th>By</th></tr></thead>")
    rows = []
    for m in events:
        frm = f"{m.source or '?'}/{m.from_snapshot or '?'}"
        into = m.masked_snapshot or "-"
        if m.environment:
            into += f" into environment {m.environment} ({m.target})"
        rules = f"{m.rules_file or '(file name not stored)'} sha256 {m.rules_sha256 or '?'}"
        strict = "-" if m.strict is None else "yes" if m.strict else "NO"
        outcome = m.outcome + (f": {m.error}" if m.error else "")
        leak = m.leak_audit + (f" ({m.leak_detail})" if m.leak_detail else "")
        rows.append(_row([_td(_when(m.time), "when"), _td(m.operation), _td(outcome), _td(frm, "id"), _td(into, "id"),
                          _td(rules, "id"), _td(strict), _td(leak, f"leak-{m.leak_audit.replace(' ', '-')}"),
                          _td(f"{m.user}@{m.host}")], "mask-event"))
    body = (f'<table class="masks">{head}<tbody>{"".join(rows)}</tbody></table>' if rows else
            '<p class="muted">No mask or refresh in the period.</p>')
    return f'<section id="masking"><h2>Masking: every mask and refresh</h2>{body}</section>'


def _policy(events: list[PolicyEvent]) -> str:
    head = ("<thead><tr><th>Time</th><th>Verdict</th><th>Operation</th><th>Snapshot</th><th>Data</th>"
            "<th>Target</th><th>Why</th><th>By</th></tr></thead>")
    rows = []
    for p in events:
        data = f"{p.source or '?'}: {p.data_class or '?'}"
        target = p.target or "?"
        if p.environment:
            target += f" (environment {p.environment}, {p.target_class or '?'})"
        elif p.target_class:
            target += f" ({p.target_class})"
        why = p.reason or ""
        if p.confirmed and "--confirm" not in why:
            why = f"confirmed with --confirm {p.confirmed}" + (f"; {why}" if why else "")
        outcome = "" if p.outcome in ("ok", "refused") else f" (then {p.outcome})"
        rows.append(_row([_td(_when(p.time), "when"), _td(p.verdict + outcome, "verdict"), _td(p.operation),
                          _td(p.snapshot, "id"), _td(data), _td(target), _td(why or "-"), _td(f"{p.user}@{p.host}")],
                         f"policy-event verdict-{_e(p.verdict)}"))
    body = (f'<table class="policy">{head}<tbody>{"".join(rows)}</tbody></table>' if rows else
            '<p class="muted">No policy decision in the period.</p>')
    return f'<section id="policy"><h2>Policy decisions</h2>{body}</section>'


def _legend(report: Report) -> str:
    return f"""<section id="reading"><h2>How to read this report</h2>
<p><strong>Status.</strong> <span class="badge status-red">red</span> means that <code>datasafe check --max-age
{_e(report.max_age)}</code> fails for the source: no snapshot, the newest one damaged or failed its latest
verification, or no verified snapshot younger than {_e(report.max_age)}.
<span class="badge status-amber">amber</span>: fresh, but the last backup attempt failed, an older snapshot failed
its verification, no restore test passed within {_e(report.restore_test_age)}, there is no retention policy, or
snapshots beyond the policy are still stored. <span class="badge status-green">green</span>: none of these.
Masked copies are held to their verifications only.</p>
<p><strong>Sources of truth.</strong> Snapshot facts come from the manifests (whose digests were checked when
read); verifications from the records each check leaves next to its snapshot; masks, refreshes and policy decisions
from the audit trail, whose chain was checked as <code>datasafe audit --verify</code> does. No data was read.</p>
</section>"""
