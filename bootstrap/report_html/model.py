"""What the report page is made of, as plain data: the last install's timeline and the last
verify's table, kept as report.json beside the page.

Built by pure functions from the runner's own RunReport (each step's end time and seconds,
so a phase's bar runs from its first step's start to its last step's end) and from
verify's CheckResults. Install and verify each replace only their own part, so the page
shows both however they were run. Every text is masked again on the way in: the results
are masked already, and a report file outlives the run that wrote it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bootstrap.plan import PHASES, Plan
from bootstrap.report_html.conformance import ConformanceRecord
from bootstrap.results import STATUSES, RunReport
from bootstrap.verify import CheckResult
from labcore.inventory import Inventory

Mask = Callable[[str], str]
# A phase's outcome: failed if a step failed, changed if one changed the host, ok if only
# waits or checks ran, skipped if everything was already as the plan says; "not run" if the
# run stopped before the phase started on that host.
Outcome = Literal["changed", "ok", "skipped", "failed", "not run"]
OUTCOMES: tuple[Outcome, ...] = ("changed", "ok", "skipped", "failed", "not run")
FORMAT = 1  # of report.json; a file of another format is replaced, not misread


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PhaseBar(_Frozen):
    phase: str
    outcome: Outcome
    start: float | None = None  # seconds after the run started; None: not run
    end: float | None = None
    steps: dict[str, int] = {}  # status -> number of this phase's steps on the host
    not_run: int = 0  # steps of the phase the run never reached

    @property
    def seconds(self) -> float:
        return (self.end or 0.0) - (self.start or 0.0)


class HostTimeline(_Frozen):
    host: str
    role: str = ""
    address: str = ""
    seconds: float  # from the run's start until its last step ended
    counts: dict[str, int]  # status (and "not run") -> steps
    phases: list[PhaseBar]


class InstallRecord(_Frozen):
    title: str
    written_at: str  # local time, ISO 8601
    ok: bool
    seconds: float
    summary: str
    failure: str | None = None
    hosts: list[HostTimeline]


class VerifyRow(_Frozen):
    host: str
    check: str
    passed: bool
    detail: str


class VerifyRecord(_Frozen):
    written_at: str
    rows: list[VerifyRow]

    @property
    def failed(self) -> int:
        return sum(not row.passed for row in self.rows)

    @property
    def summary(self) -> str:
        return f"{len(self.rows) - self.failed} passed, {self.failed} failed"


class ReportData(_Frozen):
    format: int = FORMAT
    lab: str
    release: str = ""
    os: str = ""
    target: str = ""
    auth: str = "keystone"  # tempauth: a Swift-only lab
    install: InstallRecord | None = None
    verify: VerifyRecord | None = None
    conformance: ConformanceRecord | None = None  # the last `lab verify --tempest`


def now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _same(text: str) -> str:
    return text


def _phase_order(phases: Iterable[str]) -> list[str]:
    """Plan order (PHASES), then any phase the plan did not name, as first seen."""
    seen = list(dict.fromkeys(phases))
    return [p for p in PHASES if p in seen] + [p for p in seen if p not in PHASES]


def phase_bar(phase: str, report: RunReport, host: str, planned: int, mask: Mask = _same) -> PhaseBar:
    """One host's phase: from its first step's start to its last step's end, and its outcome."""
    mine = [r for r in report.results if r.host == host and r.phase == phase]
    if not mine:
        return PhaseBar(phase=mask(phase), outcome="not run", not_run=planned)
    counts = Counter(r.status for r in mine)
    outcome: Outcome = next(s for s in ("failed", "changed", "ok", "skipped") if counts[s])
    start = min(r.ended - r.seconds for r in mine) - report.started
    end = max(r.ended for r in mine) - report.started
    return PhaseBar(phase=mask(phase), outcome=outcome, start=max(start, 0.0), end=max(end, 0.0),
                    steps={s: counts[s] for s in STATUSES if counts[s]}, not_run=max(planned - len(mine), 0))


def host_timeline(report: RunReport, host: str, plan: Plan | None, inventory: Inventory | None,
                  mask: Mask) -> HostTimeline:
    planned: Counter = Counter(s.phase for s in plan.for_host(host)) if plan is not None else Counter()
    ran = [r.phase for r in report.results if r.host == host]
    phases = _phase_order([*planned, *ran])
    node = next((n for n in inventory.nodes if n.name == host), None) if inventory is not None else None
    return HostTimeline(host=mask(host), role=node.role if node else "", address=node.private_ip if node else "",
                        seconds=report.host_seconds(host), counts=dict(report.counts(host)),
                        phases=[phase_bar(p, report, host, planned[p], mask) for p in phases])


def install_record(report: RunReport, summary: str, *, plan: Plan | None = None, inventory: Inventory | None = None,
                   mask: Mask = _same, title: str = "lab install") -> InstallRecord:
    """The install's part of the page: per host, each phase's bar, the summary line and the failure."""
    return InstallRecord(title=title, written_at=now(), ok=report.ok, seconds=report.seconds, summary=mask(summary),
                         failure=mask(report.failure.message()) if report.failure else None,
                         hosts=[host_timeline(report, h, plan, inventory, mask) for h in report.hosts])


def verify_record(results: list[CheckResult], mask: Mask = _same) -> VerifyRecord:
    return VerifyRecord(written_at=now(), rows=[VerifyRow(host=mask(r.host), check=mask(r.name), passed=r.passed,
                                                          detail=mask(r.detail)) for r in results])


def with_install(data: ReportData, record: InstallRecord, inventory: Inventory | None = None) -> ReportData:
    return data.model_copy(update={"install": record, **_lab_facts(inventory)})


def with_verify(data: ReportData, record: VerifyRecord, inventory: Inventory | None = None) -> ReportData:
    return data.model_copy(update={"verify": record, **_lab_facts(inventory)})


def _lab_facts(inventory: Inventory | None) -> dict:
    if inventory is None:
        return {}
    return {"lab": inventory.lab, "release": inventory.release, "os": inventory.os, "target": inventory.target,
            "auth": inventory.auth}
