"""The deploy report as one self-contained HTML page: inline CSS and SVG, no script, no fetch.

Every string that comes from the records (host names, messages, wave names) is escaped here.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from typing import Any

from oxzep7_deploy import __version__
from oxzep7_deploy.report import style
from oxzep7_deploy.report.axis import TimeAxis
from oxzep7_deploy.report.model import DeployView, HostView, Mark, Segment

WIDTH = 960  # the SVG's own units; it scales to the page
LABELS = 180  # the host names' column
RIGHT = 24
ROW = 26
BAR = 14
MARK_ROWS = 3  # label lines above the rows for the wave and gate lines, staggered


def e(value: Any) -> str:
    """Escaped text for HTML and SVG, attributes included."""
    return html.escape(str(value), quote=True)


def render_page(view: DeployView, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    title = f"{view.name}: release {view.release}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)} - oxzep7-deploy report</title>",
        f"<style>{_css()}</style></head><body>",
        f"<h1>{e(view.name)} <span class=\"release\">release {e(view.release)}</span></h1>",
        _summary(view),
        "<h2>Timeline</h2>",
        _timeline(view),
        _legend(),
        "<h2>Waves and gates</h2>",
        _waves(view),
        "<h2>Hosts</h2>",
        _hosts(view),
        f"<footer>oxzep7-deploy {e(__version__)}: made {e(_clock(now, seconds=True))} from the "
        f"records in {e(view.records)}; no host was contacted.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _css() -> str:
    return f"""
* {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
body {{ font-family: {style.FONT_FAMILY}; font-size: {style.FONT_SIZE + 3}px; color: {style.INK};
  background: {style.PAPER}; margin: 1.5em auto; max-width: 1040px; padding: 0 1em; }}
h1 {{ font-size: 1.5em; margin: 0 0 .4em; }}
h1 .release {{ font-family: {style.MONO_FAMILY}; font-weight: normal; font-size: .7em; }}
h2 {{ font-size: 1.15em; margin: 1.4em 0 .4em; border-bottom: 1px solid {style.FAINT}; }}
dl.summary {{ display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; margin: 0; }}
dl.summary dt {{ font-weight: bold; }} dl.summary dd {{ margin: 0; }}
.badge {{ color: {style.PAPER}; padding: .05em .5em; border-radius: 3px; font-weight: bold; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; vertical-align: top; padding: .25em .5em;
  border-bottom: 1px solid {style.FAINT}; }}
td.mono, .mono {{ font-family: {style.MONO_FAMILY}; font-size: .92em; word-break: break-all; }}
.missing {{ color: {style.NEUTRAL}; font-style: italic; }}
.legend span {{ display: inline-block; margin-right: 1.2em; }}
.legend i {{ display: inline-block; width: 1.4em; height: .8em; margin-right: .3em;
  vertical-align: middle; }}
svg {{ width: 100%; height: auto; font-family: {style.FONT_FAMILY}; }}
footer {{ margin-top: 2em; color: {style.NEUTRAL}; font-size: .85em; }}
@media print {{ body {{ margin: 0; max-width: none; font-size: 10pt; }} h2 {{ break-after: avoid; }}
  svg, tr {{ break-inside: avoid; }} }}
"""


def _outcome_colour(outcome: str) -> str:
    if outcome.startswith("succeeded"):
        return style.GOOD
    return {"paused": style.SWITCHED, "rolled-back": style.ROLLED_BACK}.get(
        outcome, style.FAILED if outcome in ("failed", "stopped", "rollback-incomplete")
        else style.NEUTRAL)


def _summary(view: DeployView) -> str:
    rows = [
        ("outcome", f'<span class="badge outcome" style="background:{_outcome_colour(view.outcome)}"'
                    f">{e(view.outcome)}</span>"),
        ("exit code", e(view.exit_code) if view.exit_code is not None
         else '<span class="missing">not recorded</span>'),
        ("application", e(view.app)),
        ("started", e(view.started or "not recorded")),
        ("finished", e(view.finished or "not recorded")),
        ("by", e(view.owner or "not recorded")),
        ("hosts", e(_count_states(view.hosts.values()))),
    ]
    if view.error:
        rows.append(("error", f'<span class="mono">{e(view.error)}</span>'))
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="summary">{body}</dl>'


def _count_states(hosts: Iterable[HostView]) -> str:
    counts: dict[str, int] = {}
    for host in hosts:
        counts[host.state] = counts.get(host.state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "none"


# -- the timeline -------------------------------------------------------------------------------

def _timeline(view: DeployView) -> str:
    segments = [s for h in view.hosts.values() for s in h.segments]
    if not view.timed or not segments:
        return ('<p class="missing">No step times in these records (a deploy recorded before '
                "oxzep7-deploy kept them, or one that ran no step): no timeline; the tables "
                "below are from its final report.</p>")
    spans = [(s.start, s.end) for s in segments] + [(m.at, m.at) for m in view.marks]
    axis = TimeAxis(spans, LABELS, WIDTH - RIGHT)
    top = 16 + MARK_ROWS * 13 + 18  # mark labels, then the axis labels
    height = top + ROW * len(view.hosts) + 8
    out = [f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="timeline of {e(view.name)}">',
           f"<desc>time from {e(_clock(axis.t0, seconds=True))} (UTC), across "
           f"{_duration(axis.span)}</desc>"]
    out += _axis(axis, top, height)
    for row, host in enumerate(view.hosts.values()):
        out += _host_row(host, top + row * ROW, axis.x)
    out += _marks(view.marks, axis.x, top, height)
    out.append("</svg>")
    caption = (f'<p class="mono">from {e(_clock(axis.t0, seconds=True))} to '
               f"{e(_clock(axis.t1, seconds=True))} UTC ({_duration(axis.span)})"
               + ("; a stretch where no step ran is cut short, its length written on it"
                  if axis.breaks else "") + "</p>")
    return "\n".join(out) + caption


def _axis(axis: TimeAxis, top: int, height: int) -> list[str]:
    out = []
    ticks = axis.ticks()
    for i, (px, offset) in enumerate(ticks):
        anchor = "start" if i == 0 else "end" if i == len(ticks) - 1 else "middle"
        out.append(f'<line x1="{px:.1f}" y1="{top - 4}" x2="{px:.1f}" y2="{height - 4}" '
                   f'stroke="{style.FAINT}" stroke-width="1"/>')
        out.append(f'<text x="{px:.1f}" y="{top - 8}" font-size="10" text-anchor="{anchor}" '
                   f'fill="{style.NEUTRAL}">+{_duration(offset)}</text>')
    for cut in axis.breaks:
        mid = (cut.left + cut.right) / 2
        out.append(f'<g class="axis-break"><rect x="{cut.left + 4:.1f}" y="{top - 4}" '
                   f'width="{cut.right - cut.left - 8:.1f}" height="{height - top}" '
                   f'fill="{style.FAINT}" opacity="0.6"/>'
                   f'<text x="{mid:.1f}" y="{height - 8}" font-size="9" text-anchor="middle" '
                   f'fill="{style.NEUTRAL}">{_duration(cut.end - cut.start)}</text></g>')
    return out


def _host_row(host: HostView, y: int, x: Any) -> list[str]:
    label = host.name if len(host.name) <= 26 else host.name[:25] + "\u2026"
    mid = y + ROW / 2
    out = [f'<g class="host-row" data-host="{e(host.name)}">',
           f"<title>{e(host.name)}: {e(host.state)}</title>",
           f'<text class="host-name" x="{LABELS - 8}" y="{mid + 4:.1f}" font-size="12" '
           f'text-anchor="end" fill="{style.INK}">{e(label)}</text>']
    if not host.segments:
        out.append(f'<text x="{LABELS + 4}" y="{mid + 4:.1f}" font-size="11" '
                   f'fill="{style.NEUTRAL}" font-style="italic">no step ran here</text>')
    for seg in host.segments:
        out += _segment(seg, mid, x)
    out.append("</g>")
    return out


def _segment(seg: Segment, mid: float, x: Any) -> list[str]:
    left, right = x(seg.start), x(seg.end)
    width = max(right - left, 3.0)
    height = BAR if seg.phase != "lock" else BAR / 3
    what = (f"{seg.step} {_clock(seg.start)} - {_clock(seg.end)}"
            + (f" (wave {seg.wave})" if seg.wave else "")
            + (f": failed: {seg.failed}" if seg.failed else ""))
    out = [f'<rect class="seg phase-{e(seg.phase.replace(" ", "-"))}" x="{left:.1f}" '
           f'y="{mid - height / 2:.1f}" width="{width:.1f}" height="{height:.1f}" rx="2" '
           f'fill="{style.PHASE_COLOUR.get(seg.phase, style.NEUTRAL)}"><title>{e(what)}</title></rect>']
    end = left + width
    if seg.failed:  # a cross where the step failed
        out.append(f'<g class="failure-marker" stroke="{style.FAILED}" stroke-width="2.5">'
                   f"<title>{e(what)}</title>"
                   f'<line x1="{end - 5:.1f}" y1="{mid - 9:.1f}" x2="{end + 5:.1f}" y2="{mid + 9:.1f}"/>'
                   f'<line x1="{end - 5:.1f}" y1="{mid + 9:.1f}" x2="{end + 5:.1f}" y2="{mid - 9:.1f}"/>'
                   "</g>")
    elif seg.step == "rollback":  # a triangle pointing back
        out.append(f'<polygon class="rollback-marker" points="{end + 9:.1f},{mid - 7:.1f} '
                   f'{end + 9:.1f},{mid + 7:.1f} {end + 1:.1f},{mid:.1f}" '
                   f'fill="{style.ROLLED_BACK}"><title>{e(what)}</title></polygon>')
    return out


def _marks(marks: Sequence[Mark], x: Any, top: int, height: int) -> list[str]:
    out = []
    for index, mark in enumerate(marks):
        px = x(mark.at)
        colour = style.GATE_COLOUR.get(mark.event, style.NEUTRAL)
        dash = ' stroke-dasharray="5,3"' if mark.event == "wave" else ""
        text = f"wave {mark.wave}" if mark.event == "wave" else \
            f"{mark.event}" + (f": {mark.wave}" if mark.wave else "")
        label_y = 14 + (index % MARK_ROWS) * 13
        anchor = "end" if px > WIDTH - 120 else "start"
        nudge = -3 if anchor == "end" else 3
        out.append(
            f'<g class="gate-line {e(mark.event)}-line" data-wave="{e(mark.wave or "")}">'
            f"<title>{e(text)} at {e(_clock(mark.at, seconds=True))}</title>"
            f'<line x1="{px:.1f}" y1="{label_y + 2}" x2="{px:.1f}" y2="{height - 4}" '
            f'stroke="{colour}" stroke-width="1.5"{dash}/>'
            f'<text x="{px + nudge:.1f}" y="{label_y}" font-size="10" text-anchor="{anchor}" '
            f'fill="{colour}">{e(text)}</text></g>')
    return out


def _legend() -> str:
    items = [(style.PHASE_COLOUR[p], p) for p in ("prepared", "switched", "healthy", "rolled back",
                                                   "failed", "lock")]
    spans = [f'<span><i style="background:{c}"></i>{e(p)}</span>' for c, p in items]
    spans.append(f'<span><strong style="color:{style.FAILED}">\u2715</strong> a step failed</span>')
    spans.append(f'<span><strong style="color:{style.ROLLED_BACK}">\u25c0</strong> rolled back'
                 "</span>")
    spans.append("<span>dashed line: a wave starts; coloured: a gate (paused, promoted, "
                 "aborted)</span>")
    return f'<p class="legend">{"".join(spans)}</p>'


# -- the tables ---------------------------------------------------------------------------------

def _waves(view: DeployView) -> str:
    if not view.waves:
        return '<p class="missing">The plan has no waves.</p>'
    gates: dict[str, list[str]] = {}
    for mark in view.marks:
        if mark.event != "wave" and mark.wave:
            gates.setdefault(mark.wave, []).append(f"{mark.event} {_clock(mark.at, seconds=True)}")
    rows = []
    for wave in view.waves:
        gate = f"promote {wave.promote}" + (f", bake {wave.bake} s" if wave.bake else "")
        passed = "; ".join(gates.get(wave.name, []))
        rows.append(f'<tr class="wave" data-wave="{e(wave.name)}"><td>{e(wave.name)}</td>'
                    f"<td>{e(len(wave.hosts))}: <span class=\"mono\">{e(', '.join(wave.hosts))}</span>"
                    f"</td><td>{e(gate)}</td><td>{e(wave.status)}"
                    + (f"<br><span class=\"mono\">{e(passed)}</span>" if passed else "")
                    + "</td></tr>")
    return ("<table><thead><tr><th>wave</th><th>hosts</th><th>gate</th><th>what became of it</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _hosts(view: DeployView) -> str:
    rows = []
    for host in view.hosts.values():
        gap = (f"{host.restart_gap_s:.2f} s" if host.restart_gap_s is not None
               else '<span class="missing">not measured</span>')
        rows.append(
            f'<tr class="host" data-host="{e(host.name)}"><td class="mono">{e(host.name)}</td>'
            f"<td>{e(host.state)}</td><td>{e(host.failed_step or '')}</td>"
            f'<td class="mono message">{e(host.message or "")}</td>'
            f"<td>{gap}</td><td>{_watch(host.watch)}</td></tr>")
    return ("<table><thead><tr><th>host</th><th>state</th><th>failed step</th><th>detail</th>"
            "<th>restart gap</th><th>watch findings</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _watch(findings: list[Any] | None) -> str:
    if findings is None:
        return '<span class="missing">no watch configured</span>'
    if not findings:
        return "none"
    items = []
    for finding in findings:
        if isinstance(finding, dict):
            text = "; ".join(f"{k}: {v}" for k, v in finding.items())
        else:
            text = str(finding)
        items.append(f"<li>{e(text)}</li>")
    return f'<ul class="mono">{"".join(items)}</ul>'


def _clock(moment: dt.datetime, seconds: bool = False) -> str:
    moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if seconds else moment.strftime("%H:%M:%S")


def _duration(seconds: float) -> str:
    if seconds < 100:
        return f"{seconds:.2f}s" if seconds < 1 else f"{seconds:.1f}s" if seconds < 10 \
            else f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 100:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
