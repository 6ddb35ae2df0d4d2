"""Render ReportData as one self-contained HTML page: inline CSS, bars as positioned boxes.

No script, no network, no external font: the page opens from disk anywhere, and a
Content-Security-Policy that allows only inline styles makes sure of it. Every text is
escaped here, in one place (`_e`), whatever it holds.
"""

from __future__ import annotations

import html
import re
from datetime import datetime

from bootstrap.report_html.conformance import conformance_section
from bootstrap.report_html.model import OUTCOMES, HostTimeline, InstallRecord, PhaseBar, ReportData, VerifyRecord
from bootstrap.report_html.style import CSS

POLICY = "default-src 'none'; style-src 'unsafe-inline'"
LEGEND = {"changed": "changed", "ok": "ok (only waits and checks)", "skipped": "skipped (already as the plan says)",
          "failed": "failed", "not run": "not run"}
SWATCH = {"changed": "var(--changed)", "ok": "var(--ok)", "skipped": "var(--skipped)", "failed": "var(--failed)",
          "not run": "var(--notrun)"}
MAX_TICKS = 8
COUNT_ORDER = ("changed", "skipped", "ok", "failed", "not run")  # as summary_line says them


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _seconds(value: float) -> str:
    shown = f"{value:.2f}" if value < 1 else f"{value:.1f}"
    return f"{shown}\u00a0s"  # never "88.0" at a line's end and "s" on the next


def _unbroken(line: str) -> str:
    """A summary line with its seconds kept together ("in 88.0 s")."""
    return re.sub(r"(\d) s\b", "\\1\u00a0s", line)


def _when(stamp: str) -> str:
    """An ISO 8601 time as a person reads it: "2026-12-02 04:21:06 (UTC+00:00)"."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    offset = moment.strftime("%z")
    zone = f" (UTC{offset[:3]}:{offset[3:]})" if offset else ""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + zone


def tick_step(total: float, most: int = MAX_TICKS) -> float:
    """The smallest 1-2-5 step (in seconds) that puts at most `most` ticks on [0, total]."""
    step = 0.01
    while total / step > most:
        for factor in (2, 2.5, 2):  # 0.01 -> 0.02 -> 0.05 -> 0.1 -> ...
            step *= factor
            if total / step <= most:
                break
    return round(step, 6)


def _pct(value: float, total: float) -> str:
    return f"{100 * value / total:.3f}%"


def _counts(steps: dict[str, int]) -> str:
    """"3 changed, 1 skipped": in the order of the summary line, zeros left out."""
    order = {status: i for i, status in enumerate(COUNT_ORDER)}
    return ", ".join(f"{n} {status}" for status, n in sorted(steps.items(), key=lambda kv: order.get(kv[0], 99)) if n)


def _bar(phase: PhaseBar, total: float, grid: str) -> str:
    if phase.outcome == "not run":
        return (f'<div class="track notrun" style="{grid}"><span class="notrun-note">not run'
                f'{f" ({phase.not_run} steps)" if phase.not_run else ""}</span></div>')
    tip = f"{phase.phase}: {_seconds(phase.start or 0)} to {_seconds(phase.end or 0)}; {_counts(phase.steps)}"
    return (f'<div class="track" style="{grid}"><div class="bar {phase.outcome}" '
            f'style="left:{_pct(phase.start or 0, total)};width:{_pct(phase.seconds, total)}" '
            f'title="{_e(tip)}"></div></div>')


def _phase_row(phase: PhaseBar, total: float, grid: str) -> str:
    detail = _counts(phase.steps) + (f", {phase.not_run} not run" if phase.not_run and phase.steps else "")
    secs = "" if phase.outcome == "not run" else _seconds(phase.seconds)
    return (f'<div class="row" data-phase="{_e(phase.phase)}"><div class="phase">{_e(phase.phase)}</div>'
            f'{_bar(phase, total, grid)}<div class="secs">{secs}<small>{_e(detail)}</small></div></div>')


def _host(host: HostTimeline, total: float, grid: str) -> str:
    where = " · ".join(_e(part) for part in (host.role, host.address) if part)
    counts = _counts(host.counts)
    rows = "".join(_phase_row(phase, total, grid) for phase in host.phases)
    failed = ' <span class="pill bad">FAILED</span>' if host.counts.get("failed") else ""
    return (f'<div class="host" data-host="{_e(host.host)}"><div class="host-head">'
            f'<span class="host-name">{_e(host.host)}{failed}</span><span class="muted">{where}</span>'
            f'<span class="muted">{_e(counts)}</span><span class="host-total">{_seconds(host.seconds)}</span></div>'
            f"{rows}</div>")


def _axis(total: float, step: float) -> str:
    ticks, value = [], 0.0
    while value <= total + 1e-9:
        label = f"{value:g} s"
        ticks.append(f'<span class="tick{" first" if value == 0 else ""}" style="left:{_pct(value, total)}">'
                     f"{label}</span>")
        value += step
    return f'<div class="row axis"><div></div><div class="track">{"".join(ticks)}</div><div></div></div>'


def _legend() -> str:
    items = "".join(f'<span><span class="swatch" style="background:{SWATCH[o]}"></span>{_e(LEGEND[o])}</span>'
                    for o in OUTCOMES)
    return f'<div class="legend">{items}</div>'


def timeline(record: InstallRecord) -> str:
    ends = [p.end for h in record.hosts for p in h.phases if p.end is not None]
    total = max([record.seconds, *ends, 0.01])
    step = tick_step(total)
    grid = f"background-size:{_pct(step, total)} 100%"
    hosts = "".join(_host(host, total, grid) for host in record.hosts)
    failure = f'<pre class="failure">{_e(record.failure)}</pre>' if record.failure else ""
    return (f'<section class="card" id="install"><h2>{_e(record.title)}: timeline per host</h2>{failure}'
            f'{_legend()}<div class="timeline">{_axis(total, step)}{hosts}</div></section>')


def verify_table(record: VerifyRecord) -> str:
    rows = "".join(
        f'<tr class="{"pass" if row.passed else "fail"}"><td class="host">{_e(row.host)}</td><td>{_e(row.check)}</td>'
        f'<td><span class="pill {"good" if row.passed else "bad"}">{"PASS" if row.passed else "FAIL"}</span></td>'
        f'<td class="detail">{_e(row.detail)}</td></tr>' for row in record.rows)
    body = rows or '<tr><td colspan="4" class="empty">no checks ran</td></tr>'
    return (f'<section class="card" id="verify"><h2>lab verify: {_e(record.summary)}</h2><table><thead><tr>'
            f"<th>host</th><th>check</th><th>result</th><th>detail</th></tr></thead><tbody>{body}</tbody></table>"
            f"</section>")


def _tile(what: str, good: bool | None, line: str, when: str | None, hint: str) -> str:
    pill = {True: ("good", "OK"), False: ("bad", "FAILED"), None: ("none", "NOT RUN")}[good]
    when_line = (f'<span class="muted">written {_e(_when(when))}</span>' if when else
                 f'<span class="muted">{_e(hint)}</span>')
    return (f'<div class="card tile"><span class="what">{_e(what)} <span class="pill {pill[0]}">{pill[1]}</span>'
            f'</span><span class="line">{_e(_unbroken(line))}</span>{when_line}</div>')


def tiles(data: ReportData) -> str:
    install, verify = data.install, data.verify
    first = (_tile("lab install", install.ok, install.summary, install.written_at, "") if install else
             _tile("lab install", None, "no install recorded yet", None, "run `lab install` to fill in the timeline"))
    second = (_tile("lab verify", not verify.failed, verify.summary, verify.written_at, "") if verify else
              _tile("lab verify", None, "no verify recorded yet", None, "run `lab verify` to fill in the table"))
    return f'<div class="tiles">{first}{second}</div>'


def _what(data: ReportData) -> str:
    if data.auth == "tempauth":
        return f"Swift only with TempAuth (no Keystone), {data.release}" if data.release else "Swift only with TempAuth"
    return f"OpenStack {data.release}" if data.release else ""


def render_page(data: ReportData) -> str:
    facts = " · ".join(_e(part) for part in (
        _what(data), data.os, f"target {data.target}" if data.target else "")
        if part)
    sections = ((timeline(data.install) if data.install else "") + (verify_table(data.verify) if data.verify else "")
                + (conformance_section(data.conformance, _e) if data.conformance else ""))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(data.lab)}: lab report</title><style>{CSS}</style></head><body>"
            f'<header><h1>{_e(data.lab)}</h1><div class="sub">{facts}</div></header>'
            f"<main>{tiles(data)}{sections}</main>"
            f"<footer>Written by <code>lab install</code> and <code>lab verify</code> from report.json beside this "
            f"page; secrets are shown as ********.</footer></body></html>\n")
