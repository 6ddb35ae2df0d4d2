"""The report page (.lab/<name>/report.html) from a synthetic install and verify: every host and
phase with its bar where the runner's timings put it, the failure shown, the verify table,
text escaped and secrets masked, and report.json keeping the last install and the last verify.
"""

from __future__ import annotations

import json
import re
import stat
from html.parser import HTMLParser
from pathlib import Path

import pytest
from plan_fixtures import SECRET, SECRETS, inventory, plan_for

from bootstrap.plan import PHASE_NEEDS, Plan
from bootstrap.report_html import page_path, write_install_report, write_verify_report
from bootstrap.report_html.model import ReportData, install_record, phase_bar
from bootstrap.report_html.page import render_page, tick_step
from bootstrap.report_html.store import data_path
from bootstrap.results import Failure, RunReport, StepResult
from bootstrap.verify import CheckResult
from labcore.paths import LabPaths

# Seconds each phase takes on a host in the synthetic run (about what the twin measures).
PHASE_SECONDS = {"base": 2.0, "packages": 22.0, "controller-services": 8.0, "service-packages": 60.0,
                 "front-door": 2.0, "keystone": 16.0, "dashboard": 11.0, "swift-proxy": 4.0, "swift-storage": 6.0,
                 "swift-rings": 3.0, "finalize": 2.0}
T0 = 1000.0  # the run's monotonic start
SCRIPT = "<script>alert('x')</script>"


def _status(index: int, step) -> str:
    if step.phase == "finalize":
        return "ok"
    return "skipped" if index % 3 == 2 else "changed"


def synthetic_run(plan: Plan, hosts: list[str], fail_at: tuple[str, str] | None = None) -> RunReport:
    """What the runner reports for plan: on each host a phase starts when the phases it needs end,
    its steps one after another. fail_at (host, phase): that phase's second (or only) step fails and the
    run stops there (phases that had not started never start)."""
    results: list[StepResult] = []
    failure = None
    for host in hosts:
        ends: dict[str, float] = {}
        for phase in PHASE_NEEDS:
            steps = [s for s in plan.for_host(host) if s.phase == phase]
            if not steps:
                ends[phase] = max((ends[n] for n in PHASE_NEEDS[phase] if n in ends), default=0.0)
                continue
            clock = max((ends[n] for n in PHASE_NEEDS[phase] if n in ends), default=0.0)
            each = PHASE_SECONDS[phase] / len(steps)
            for index, step in enumerate(steps):
                clock += each
                failing = (host, phase) == fail_at and index == min(1, len(steps) - 1)
                results.append(StepResult(host, phase, step.name, "failed" if failing else _status(index, step),
                                          each, (), T0 + clock))
                if failing:
                    failure = Failure(host, phase, step.name, 1, "swift-ring-builder object.builder rebalance",
                                      (f"ERROR: {SCRIPT} password {SECRET}",), Path("/tmp/logs") / f"{host}.log")
                    break
            ends[phase] = clock
            if failure is not None and failure.host == host:
                break
    if failure is not None:  # the run stopped: what would have started after the failure never ran
        stop = max(r.ended for r in results if r.status == "failed")
        results = [r for r in results if r.ended - r.seconds < stop]
    seconds = max(r.ended for r in results) - T0
    planned = {h: len(plan.for_host(h)) for h in hosts}
    return RunReport(results, planned, seconds, Path("/tmp/logs"), failure, T0)


def synthetic_checks() -> list[CheckResult]:
    return [CheckResult("ping object1 (10.0.0.51)", "controller", True, "1 packets transmitted, 1 received"),
            CheckResult("time synchronised to controller (10.0.0.11)", "object1", True, "^* 10.0.0.11 3 6 377"),
            CheckResult("openstack token issue (admin)", "controller", True, "2026-12-01T12:00:00+0000"),
            CheckResult("swift object round trip (demo)", "controller", False,
                        f"exit 1\n{SCRIPT} & <b>bold</b>\npassword {SECRET}"),
            CheckResult("sdb is XFS at /srv/node/sdb", "object2", True, "xfs /srv/node/sdb")]


@pytest.fixture
def lab():
    _, plan = plan_for("debian-12")
    inv = inventory("debian-12")
    return inv, plan, LabPaths.for_lab(inv.lab)


class _Page(HTMLParser):
    """The parts of the page a reader sees: per host its phases and bars, the verify rows, all text."""

    def __init__(self):
        super().__init__()
        self.hosts: dict[str, dict[str, dict]] = {}
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self.tags: list[str] = []
        self._host = self._phase = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        classes = (attrs.get("class") or "").split()
        if tag in ("pre", "section"):  # past the timeline's rows
            self._host = self._phase = None
        if "data-host" in attrs:
            self._host, self._phase = attrs["data-host"], None
            self.hosts[self._host] = {}
        if "data-phase" in attrs:
            self._phase = attrs["data-phase"]
            self.hosts[self._host][self._phase] = {"outcome": None, "style": None, "text": ""}
        if "bar" in classes:
            self.hosts[self._host][self._phase].update(outcome=classes[1], style=attrs["style"])
        if "notrun" in classes:
            self.hosts[self._host][self._phase]["outcome"] = "not run"
        if tag == "tr":
            self.rows.append([])
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._host and self._phase:
            self.hosts[self._host][self._phase]["text"] += data


def parse(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    return parsed


def _percent(style: str, key: str) -> float:
    return float(re.search(rf"{key}:([\d.]+)%", style).group(1))


def test_every_host_and_phase_has_a_bar_from_its_first_step_start_to_its_last_step_end(lab):
    inv, plan, paths = lab
    run = synthetic_run(plan, [n.name for n in inv.nodes])

    written = write_install_report(paths, inv, run, SECRETS, print, plan)

    assert written == page_path(paths)
    page = parse(written.read_text())
    assert list(page.hosts) == ["controller", "object1", "object2"]
    assert list(page.hosts["controller"]) == [p for p in PHASE_NEEDS if any(s.phase == p for s in
                                                                             plan.for_host("controller"))]
    total = run.seconds
    for host, phases in page.hosts.items():
        for phase, shown in phases.items():
            mine = [r for r in run.results if r.host == host and r.phase == phase]
            start = min(r.ended - r.seconds for r in mine) - T0
            end = max(r.ended for r in mine) - T0
            assert _percent(shown["style"], "left") == pytest.approx(100 * start / total, abs=0.01)
            assert _percent(shown["style"], "width") == pytest.approx(100 * (end - start) / total, abs=0.01)
            assert f"{end - start:.1f}\u00a0s" in shown["text"]
    # the controller's phases run side by side: service-packages starts with controller-services
    bars = page.hosts["controller"]
    assert _percent(bars["service-packages"]["style"], "left") == _percent(bars["controller-services"]["style"], "left")
    assert {"changed", "ok"} <= {shown["outcome"] for shown in bars.values()}
    assert "changed, " in "".join(page.text) and "0 failed in " in "".join(page.text)


def test_a_failed_install_shows_the_failed_phase_the_failure_and_what_never_ran(lab):
    inv, plan, paths = lab
    run = synthetic_run(plan, [n.name for n in inv.nodes], fail_at=("controller", "swift-rings"))

    write_install_report(paths, inv, run, SECRETS, print, plan)
    html = page_path(paths).read_text()
    page = parse(html)

    controller = page.hosts["controller"]
    assert controller["swift-rings"]["outcome"] == "failed"
    assert controller["finalize"]["outcome"] == "not run" and "not run" in controller["finalize"]["text"]
    assert "FAILED" in page.text and "step swift-rings/" in "".join(page.text)
    assert "swift-ring-builder object.builder rebalance" in "".join(page.text)
    assert SECRET not in html and "********" in html
    assert SCRIPT not in html and "&lt;script&gt;" in html


def test_the_verify_table_shows_host_check_verdict_and_escaped_detail(lab):
    inv, _, paths = lab

    path = write_verify_report(paths, inv, synthetic_checks(), SECRETS, print)
    html = path.read_text()
    page = parse(html)

    rows = [row for row in page.rows if row]
    assert [(r[0], r[1], r[2]) for r in rows] == [(c.host, c.name, "PASS" if c.passed else "FAIL")
                                                  for c in synthetic_checks()]
    assert rows[3][3] == f"exit 1\n{SCRIPT} & <b>bold</b>\npassword ********"  # shown as text, not markup
    assert SCRIPT not in html and "<b>bold" not in html and SECRET not in html
    assert "script" not in page.tags and "b" not in page.tags
    assert "4 passed, 1 failed" in "".join(page.text)


def test_install_and_verify_each_replace_their_own_part_and_keep_the_other(lab):
    inv, plan, paths = lab
    hosts = [n.name for n in inv.nodes]
    write_verify_report(paths, inv, synthetic_checks(), SECRETS, print)
    write_install_report(paths, inv, synthetic_run(plan, hosts, fail_at=("object1", "swift-storage")), SECRETS,
                         print, plan)
    write_install_report(paths, inv, synthetic_run(plan, hosts), SECRETS, print, plan)

    html = page_path(paths).read_text()
    page = parse(html)
    # the last install (no failure box, nothing failed), and the verify of before it kept
    assert 'class="failure"' not in html and "object1: step swift-storage/" not in "".join(page.text)
    assert "failed" not in {shown["outcome"] for phases in page.hosts.values() for shown in phases.values()}
    assert [r[1] for r in page.rows if r] == [c.name for c in synthetic_checks()]
    write_verify_report(paths, inv, synthetic_checks()[:2], SECRETS, print)
    page = parse(page_path(paths).read_text())
    assert len([r for r in page.rows if r]) == 2 and set(page.hosts) == set(hosts)
    for path in (page_path(paths), data_path(paths)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(data_path(paths).read_text())["verify"]["rows"][1]["host"] == "object1"


def test_a_damaged_report_json_is_replaced_with_a_line(lab):
    inv, _, paths = lab
    paths.ensure()
    data_path(paths).write_text('{"format": 1, "lab": 5, "install": "half')
    said: list[str] = []

    path = write_verify_report(paths, inv, synthetic_checks(), SECRETS, said.append)

    assert path is not None and "4 passed, 1 failed" in path.read_text()
    assert len(said) == 1 and "report.json is not valid" in said[0] and "replaces it" in said[0]


def test_a_report_that_cannot_be_written_is_a_line_not_a_failure(lab, tmp_path):
    inv, _, _ = lab
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    said: list[str] = []

    assert write_verify_report(LabPaths(blocked / "lab"), inv, synthetic_checks(), SECRETS, said.append) is None
    assert len(said) == 1 and "could not write the report" in said[0]


def test_the_page_is_self_contained(lab):
    inv, plan, paths = lab
    write_install_report(paths, inv, synthetic_run(plan, [n.name for n in inv.nodes]), SECRETS, print, plan)
    html = write_verify_report(paths, inv, synthetic_checks(), SECRETS, print).read_text()

    assert "<script" not in html.lower() and "<link" not in html and "@import" not in html
    assert not re.search(r"(src|href)=", html) and "url(" not in html
    assert not re.search(r"https?://", html)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_a_phase_with_only_passed_waits_is_ok_and_one_without_steps_is_not_run():
    run = RunReport([StepResult("controller", "finalize", "cloud ready", "ok", 2.0, (), T0 + 10.0)],
                    {"controller": 2}, 10.0, Path("/tmp"), None, T0)

    assert phase_bar("finalize", run, "controller", 1).model_dump(include={"outcome", "start", "end"}) == {
        "outcome": "ok", "start": 8.0, "end": 10.0}
    assert phase_bar("keystone", run, "controller", 1).outcome == "not run"


def test_the_axis_has_a_few_round_ticks():
    assert [tick_step(t) for t in (0.05, 0.5, 9.0, 107.4, 1300.0)] == [0.01, 0.1, 2.0, 20.0, 200.0]


def test_the_page_escapes_names_too():
    run = RunReport([StepResult('web"<i>', "base", "hostname", "changed", 1.0, (), T0 + 1.0)],
                    {'web"<i>': 1}, 1.0, Path("/tmp"), None, T0)

    html = render_page(ReportData(lab="<lab>", install=install_record(run, "1 changed")))

    assert 'data-host="web&quot;&lt;i&gt;"' in html and "<i>" not in html and "<lab>" not in html
