"""The report page's conformance section: the last `lab verify --tempest`, per set and per test.

Kept apart from model.py and page.py (which it extends) so those stay about install and
verify; the record is plain data in report.json like the rest, every text masked on the
way in, and rendered with the page's one escaping function.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from bootstrap.conformance import deliberate
from bootstrap.conformance.results import SetSummary

Mask = Callable[[str], str]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConformanceSet(_Frozen):
    name: str
    passed: int
    failed: int
    skipped: int
    verdict: str  # "... 0 failed, N skipped (all listed as deliberate)"


class ConformanceLine(_Frozen):
    test: str
    outcome: str  # failed | skipped (deliberate) | skipped (not deliberate)
    reason: str


class ConformanceRecord(_Frozen):
    written_at: str
    seconds: float
    sets: list[ConformanceSet]
    lines: list[ConformanceLine]

    @property
    def ok(self) -> bool:
        return not any(s.failed for s in self.sets)

    @property
    def summary(self) -> str:
        return "; ".join(f"{s.name}: {s.passed} passed, {s.failed} failed, {s.skipped} skipped" for s in self.sets)


def conformance_record(guideline: SetSummary, api: SetSummary, seconds: float, written_at: str,
                       mask: Mask) -> ConformanceRecord:
    sets = [ConformanceSet(name=mask(s.name), passed=s.passed, failed=len(s.failed), skipped=len(s.skipped),
                           verdict=mask(deliberate.verdict(s))) for s in (guideline, api)]
    failures = {f.test_id: f for s in (guideline, api) for f in s.failed}  # a test failing in both sets: once
    lines = [ConformanceLine(test=mask(f.test_id), outcome="failed", reason=mask(f.reason)) for f in failures.values()]
    for skip in api.skipped:
        why = deliberate.reason(skip)
        lines.append(ConformanceLine(test=mask(skip.test_id),
                                     outcome="skipped (deliberate)" if why else "skipped (not deliberate)",
                                     reason=mask(why or skip.reason)))
    return ConformanceRecord(written_at=written_at, seconds=seconds, sets=sets, lines=lines)


def conformance_section(record: ConformanceRecord, e: Callable[[object], str]) -> str:
    sets = "".join(f'<tr class="{"fail" if s.failed else "pass"}"><td>{e(s.name)}</td><td>{s.passed}</td>'
                   f"<td>{s.failed}</td><td>{s.skipped}</td><td>{e(s.verdict)}</td></tr>" for s in record.sets)
    lines = "".join(f'<tr class="{"fail" if line.outcome == "failed" else "pass"}"><td class="detail">'
                    f"{e(line.test)}</td><td>{e(line.outcome)}</td><td class=\"detail\">{e(line.reason)}</td></tr>"
                    for line in record.lines)
    tests = (f"<table><thead><tr><th>test</th><th>outcome</th><th>reason</th></tr></thead><tbody>{lines}"
             f"</tbody></table>") if lines else ""
    return (f'<section class="card" id="conformance"><h2>lab verify --tempest: OpenStack\'s own tests '
            f"({record.seconds / 60:.1f} min)</h2><table><thead><tr><th>set</th><th>passed</th><th>failed</th>"
            f"<th>skipped</th><th>verdict</th></tr></thead><tbody>{sets}</tbody></table>{tests}</section>")
