"""What a Tempest run found, read from its subunit stream: per set, passed / failed / skipped, with reasons.

Tempest (through stestr) writes every result to a subunit v2 stream; the stream is copied
from the controller to `.lab/<name>/tempest/` and read here with python-subunit, the
library stestr itself writes it with, so nothing depends on the text Tempest prints.

A class whose setUpClass fails or skips is one result named `setUpClass (module.Class)`,
not one per test (seen in Tempest's own streams, kept as test fixtures). Tempest counts it
once, and so does the API set; the guideline set counts by its required tests, so a
required test whose class never set up takes its class's result. A required test that
has no result at all did not run: for a conformance program that is a failure.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import subunit
import testtools

from bootstrap.conformance.guideline import Guideline

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
_STATUS = {"success": PASSED, "xfail": PASSED, "fail": FAILED, "uxsuccess": FAILED, "skip": SKIPPED,
           "inprogress": FAILED}
_FIXTURE = re.compile(r"^(?:setUpClass|tearDownClass) \((?P<cls>[\w.]+)\)$")
NOT_RUN = "did not run: no result in the stream (the run was cut short, or the include list missed it)"
UNFINISHED = "started but never finished (the run was cut short)"


@dataclass(frozen=True)
class TempestResult:
    test_id: str
    status: str  # passed | failed | skipped
    reason: str  # first line of why: the exception of a failure, the reason of a skip; "" when passed


@dataclass
class SetSummary:
    name: str
    passed: int = 0
    failed: list[TempestResult] = field(default_factory=list)
    skipped: list[TempestResult] = field(default_factory=list)

    def add(self, result: TempestResult) -> None:
        if result.status == PASSED:
            self.passed += 1
        else:
            (self.failed if result.status == FAILED else self.skipped).append(result)

    @property
    def total(self) -> int:
        return self.passed + len(self.failed) + len(self.skipped)

    def line(self) -> str:
        return f"{self.name}: {self.passed} passed, {len(self.failed)} failed, {len(self.skipped)} skipped"


def read_stream(data: bytes) -> list[TempestResult]:
    """Every test's final result in a subunit v2 stream, in the order they ended."""
    ended: list[dict] = []
    sink = testtools.StreamToDict(ended.append)
    sink.startTestRun()
    subunit.ByteStreamToStreamResult(io.BytesIO(data), non_subunit_name="stdout").run(sink)
    sink.stopTestRun()  # flushes tests still in progress: a cut-short run
    return [_result(one) for one in ended if one["status"] in _STATUS]


def _result(one: dict) -> TempestResult:
    status = _STATUS[one["status"]]
    if one["status"] == "inprogress":
        return TempestResult(one["id"], status, UNFINISHED)
    details = one["details"]
    if status == SKIPPED:
        return TempestResult(one["id"], status, _first_line(_text(details.get("reason"))))
    if status == FAILED:
        return TempestResult(one["id"], status, _exception_line(_text(details.get("traceback"))) or one["status"])
    return TempestResult(one["id"], status, "")


def api_summary(name: str, results: list[TempestResult]) -> SetSummary:
    """A set as Tempest counts it: one result per test, or per class that never set up."""
    summary = SetSummary(name)
    for result in results:
        summary.add(result)
    return summary


def guideline_summary(name: str, guideline: Guideline, results: list[TempestResult]) -> SetSummary:
    """The guideline's required tests, each once: its own result, its class's, or not run (failed)."""
    own: dict[str, TempestResult] = {}
    by_class: dict[str, TempestResult] = {}
    for result in results:
        fixture = _FIXTURE.match(result.test_id)
        if fixture:
            by_class.setdefault(fixture.group("cls"), result)
        else:
            required = guideline.match(result.test_id)
            if required is not None:
                own[required.name] = result
    summary = SetSummary(name)
    for test in guideline.tests:
        found, fixture = own.get(test.name), by_class.get(test.name.rsplit(".", 1)[0])
        if found is not None:
            summary.add(found)
        elif fixture is not None:
            summary.add(TempestResult(test.name, fixture.status, f"{fixture.test_id}: {fixture.reason}"))
        else:
            summary.add(TempestResult(test.name, FAILED, NOT_RUN))
    return summary


def _text(content) -> str:
    return content.as_text() if content is not None else ""


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _exception_line(traceback: str) -> str:
    """The exception a traceback ends with (its last unindented line), not 'Traceback (most recent...'."""
    lines = [line for line in traceback.splitlines() if line.strip() and not line[0].isspace()
             and not line.startswith(("Traceback (", "During handling", "The above exception"))]
    return lines[-1].strip() if lines else ""

