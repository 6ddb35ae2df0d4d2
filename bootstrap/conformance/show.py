"""What `lab verify --tempest` prints: a table per set, every failure and every skip with its reason."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bootstrap.conformance import deliberate
from bootstrap.conformance.runner import Conformance

REASON_CHARS = 160


def render(found: Conformance, console: Console) -> None:
    table = Table(title=f"Tempest ({found.seconds / 60:.1f} min)")
    for column in ("set", "passed", "failed", "skipped"):
        table.add_column(column, justify="left" if column == "set" else "right")
    for summary in (found.guideline, found.api):
        table.add_row(summary.name, str(summary.passed), str(len(summary.failed)), str(len(summary.skipped)))
    console.print(table)
    seen: set[str] = set()
    for summary in (found.guideline, found.api):
        for failure in summary.failed:
            if failure.test_id not in seen:
                seen.add(failure.test_id)
                console.print(f"FAILED  {failure.test_id}\n        {failure.reason[:REASON_CHARS]}", markup=False)
    for skip in found.api.skipped:
        why = deliberate.reason(skip)
        label = "skipped (deliberate)" if why else "SKIPPED (not deliberate)"
        console.print(f"{label}  {skip.test_id}\n        {(why or skip.reason)[:REASON_CHARS]}", markup=False)
    for summary in (found.guideline, found.api):
        console.print(deliberate.verdict(summary), markup=False)
    console.print(f"subunit stream: {found.subunit}\nTempest's log: {found.log}", markup=False)
