# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The HTML release report: one self-contained page per release (inline CSS, an inline SVG chart, no script, no
external reference), readable in a browser, an AWX artifact or a mail attachment.

``render(record)`` takes a release record (the shape of ``release_history``: application, environment, version, who,
started, ended, strategy, from_version, to_version, result, reason, timeline, diagnostics) and returns the page:
a summary, a chart of the weights over time with one marker per timeline event coloured by its gates' verdict
(pass / pending / fail) and the failing gate's reason written beside it, the timeline as a table, CodeDeploy
per-instance lifecycle events and diagnostics where present. Every value is HTML-escaped.
"""

from __future__ import annotations

import json
from html import escape

VERDICT_ORDER = ("fail", "held", "pending", "pass")
COLOURS = {"fail": "#c62828", "held": "#ef6c00", "pending": "#f9a825", "pass": "#2e7d32", None: "#546e7a"}
RESULT_COLOURS = {"success": "#2e7d32", "in_progress": "#1565c0"}
POOL_COLOURS = ("#1565c0", "#2e7d32", "#6a1b9a", "#00838f")
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 760, 260, 48, 16, 16, 36

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#212121;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.result{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{border:1px solid #e0e0e0;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#f5f5f5}dl{display:grid;grid-template-columns:10em 1fr;gap:2px 12px}
dt{color:#616161}dd{margin:0}.verdict-fail{color:#c62828;font-weight:600}.verdict-pending{color:#f9a825}
.verdict-pass{color:#2e7d32}.verdict-held{color:#ef6c00}pre{white-space:pre-wrap;background:#fafafa;padding:6px;
margin:0;font-size:12px}svg text{font-size:11px;fill:#424242}.reason{font-weight:600}
"""


def _e(value):
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, default=str, sort_keys=True)
    return escape(value, quote=True)


def verdict(entry):
    """The worst verdict of an event's gates (fail > held > pending > pass), None without gates."""
    seen = {g.get("verdict") for g in entry.get("gates") or []}
    for v in VERDICT_ORDER:
        if v in seen:
            return v
    return None


def _failing_reason(entry):
    bad = [g for g in entry.get("gates") or [] if g.get("verdict") in ("fail", "held")]
    return "; ".join(f"{g.get('name')}: {g.get('reason')}" for g in bad) or entry.get("reason") or ""


def _canary(timeline):
    """The pool the release moves traffic to: the one with the smallest share at the first weighed event."""
    for entry in timeline:
        if entry.get("weights"):
            return sorted(entry["weights"].items(), key=lambda kv: (kv[1], kv[0]))[0][0]
    return None


def chart(timeline):
    """An SVG of each pool's weight over time; one ``circle.event`` per timeline event, coloured by its verdict."""
    pools = sorted({p for e in timeline for p in (e.get("weights") or {})})
    canary = _canary(timeline)
    times = [float(e.get("t") or 0) for e in timeline]
    span = max(times + [1.0])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t):
        return LEFT + plot_w * float(t or 0) / span

    def y(weight):
        return TOP + plot_h * (1 - float(weight) / 100)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'role="img" aria-label="weights over time">'
    ]
    for w in (0, 25, 50, 75, 100):
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(w):.1f}" y2="{y(w):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(w) + 4:.1f}" text-anchor="end">{w}%</text>')
    out.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{_e(f"{span:g} s")}</text>')
    out.append(f'<text x="{LEFT}" y="{HEIGHT - 8}">0 s</text>')
    for i, pool in enumerate(pools):
        colour = POOL_COLOURS[i % len(POOL_COLOURS)]
        points, last = [], None
        for e in timeline:
            weight = (e.get("weights") or {}).get(pool)
            if weight is None:
                continue
            if last is not None:  # a step: the weight holds until the next event
                points.append(f"{x(e.get('t')):.1f},{y(last):.1f}")
            points.append(f"{x(e.get('t')):.1f},{y(weight):.1f}")
            last = weight
        out.append(
            f'<polyline class="pool" data-pool="{_e(pool)}" fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{" ".join(points)}"/>'
        )
        out.append(
            f'<text x="{WIDTH - RIGHT - 4}" y="{TOP + 12 + 14 * i}" text-anchor="end" fill="{colour}">{_e(pool)}</text>'
        )
    last = 0
    for e in timeline:
        weights = e.get("weights") or {}
        if canary in weights:
            last = weights[canary]
        v = verdict(e)
        name = e.get("event") or e.get("status") or ""
        title = (
            f"t={e.get('t')}s {name} {json.dumps(weights, sort_keys=True)} {_failing_reason(e) or e.get('reason', '')}"
        )
        out.append(
            f'<circle class="event" data-event="{_e(name)}" data-verdict="{_e(v or "")}" cx="{x(e.get("t")):.1f}" '
            f'cy="{y(last):.1f}" r="{6 if v == "fail" else 4}" fill="{COLOURS.get(v, COLOURS[None])}">'
            f"<title>{_e(title)}</title></circle>"
        )
        if v in ("fail", "held"):
            tx, ty = min(x(e.get("t")) + 8, WIDTH - 300), max(y(last) - 8, TOP + 10)
            out.append(
                f'<text class="reason" x="{tx:.1f}" y="{ty:.1f}" fill="{COLOURS[v]}">'
                f"{_e(_clip(_failing_reason(e), 60))}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def _clip(text, width):
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _timeline_table(timeline):
    rows = [
        "<table class='timeline'><tr><th>t (s)</th><th>event</th><th>weights</th><th>gates</th><th>reason</th></tr>"
    ]
    for e in timeline:
        gates = "<br>".join(
            f"<span class='verdict-{_e(g.get('verdict'))}'>{_e(g.get('name'))}: {_e(g.get('verdict'))}</span> "
            f"{_e(g.get('reason'))}"
            for g in e.get("gates") or []
        )
        weights = " ".join(f"{_e(k)}={_e(v)}%" for k, v in sorted((e.get("weights") or {}).items()))
        extra = {k: v for k, v in e.items() if k not in ("t", "event", "status", "weights", "gates", "reason")}
        reason = _e(e.get("reason")) + (f"<pre>{_e(extra)}</pre>" if extra else "")
        rows.append(
            f"<tr><td>{_e(e.get('t'))}</td><td>{_e(e.get('event') or e.get('status'))}</td><td>{weights}</td>"
            f"<td>{gates}</td><td>{reason}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _lifecycle(targets):
    rows = [
        "<table class='lifecycle'><tr><th>instance</th><th>label</th><th>lifecycle event</th><th>status</th>"
        "<th>start</th><th>end</th></tr>"
    ]
    for target in targets:
        for event in target.get("lifecycle_events") or target.get("lifecycleEvents") or []:
            status = event.get("status")
            rows.append(
                f"<tr><td>{_e(target.get('target_id') or target.get('targetId'))}</td>"
                f"<td>{_e(target.get('instance_label') or target.get('instanceLabel'))}</td>"
                f"<td>{_e(event.get('lifecycle_event_name') or event.get('lifecycleEventName'))}</td>"
                f"<td class='verdict-{'fail' if status == 'Failed' else 'pass'}'>{_e(status)}</td>"
                f"<td>{_e(event.get('start_time') or event.get('startTime'))}</td>"
                f"<td>{_e(event.get('end_time') or event.get('endTime'))}</td></tr>"
            )
    rows.append("</table>")
    return "".join(rows)


def _diagnostics(diagnostics):
    if isinstance(diagnostics, list) and all(isinstance(d, dict) for d in diagnostics):
        keys = sorted({k for d in diagnostics for k in d})
        head = "".join(f"<th>{_e(k)}</th>" for k in keys)
        body = "".join(
            "<tr>" + "".join(f"<td><pre>{_e(d.get(k))}</pre></td>" for k in keys) + "</tr>" for d in diagnostics
        )
        return f"<table class='diagnostics'><tr>{head}</tr>{body}</table>"
    return f"<pre class='diagnostics'>{_e(json.dumps(diagnostics, indent=2, sort_keys=True, default=str))}</pre>"


def render(record):
    """The whole page for one release record (see the module docstring)."""
    timeline = [e for e in record.get("timeline") or [] if isinstance(e, dict)]
    result = record.get("result") or ""
    title = f"{record.get('application') or ''} {record.get('environment') or ''} {record.get('version') or ''}"
    summary = [
        ("application", record.get("application")),
        ("environment", record.get("environment")),
        ("version", record.get("version")),
        ("from → to", f"{record.get('from_version') or '?'} → {record.get('to_version') or '?'}"),
        ("strategy", record.get("strategy")),
        ("operation", record.get("operation")),
        ("who", record.get("who")),
        ("started", record.get("started")),
        ("ended", record.get("ended")),
        ("reason", record.get("reason")),
    ]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Release {_e(title.strip())}</title><style>{CSS}</style></head><body>",
        f"<h1>Release {_e(title.strip())}</h1>",
        f"<p><span class='result' id='result' style='background:{RESULT_COLOURS.get(result, '#c62828')}'>"
        f"{_e(result)}</span></p>",
        "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd id='{_e(k.split()[0])}'>{_e(v)}</dd>" for k, v in summary) + "</dl>",
    ]
    if timeline:
        parts += ["<h2>Weights over time</h2>", chart(timeline), "<h2>Timeline</h2>", _timeline_table(timeline)]
    if record.get("lifecycle"):
        parts += ["<h2>CodeDeploy lifecycle events per instance</h2>", _lifecycle(record["lifecycle"])]
    if record.get("diagnostics"):
        parts += ["<h2>Diagnostics</h2>", _diagnostics(record["diagnostics"])]
    if record.get("artifacts"):
        parts += ["<h2>Artifacts</h2>", _diagnostics(record["artifacts"])]
    parts.append("</body></html>\n")
    return "".join(parts)
