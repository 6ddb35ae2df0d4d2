"""Show plans, run reports and verify results to a person (rich tables), secrets masked.

Rendering is kept apart from running so tests assert on RunReport and CheckResult data,
and so the CLI decides where text goes. Every dynamic cell is a Text, never markup:
stderr full of [brackets] must print as it is.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bootstrap.plan import PHASE_NEEDS, Plan
from bootstrap.runner import STATUSES, RunReport
from bootstrap.verify import CheckResult
from labcore.secrets import Secrets


def render_plan(plan: Plan, secrets: Secrets, console: Console) -> None:
    """Every step as an operator would read it: where, which files, the check, each command in full."""
    for phase, steps in plan.phases():
        needs = PHASE_NEEDS[phase]
        after = f"; after {', '.join(needs)} on the same host" if needs else ""
        console.print(Text(f"phase {phase} ({len(steps)} steps{after})", style="bold"))
        for step in steps:
            lines = [f"  {step.name}  on {', '.join(step.hosts)}"]
            lines += [f"    file {f.path} {f.mode:04o} {f.owner} ({len(f.content.encode())} bytes)" for f in step.files]
            lines += [f"    copy {c.path} from {c.source_host} {c.mode:04o} {c.owner}" for c in step.copies]
            if step.check:
                lines.append(f"    done when: {step.check}")
            lines += [f"    $ {command}" for command in step.commands]
            console.print(Text(secrets.mask("\n".join(lines))))
    hosts = sorted({h for s in plan.steps for h in s.hosts})
    console.print(Text(f"{len(plan.steps)} steps on {len(hosts)} hosts; `lab plan --json` has file contents (masked)"))


def summary_line(report: RunReport) -> str:
    """The run in one line, e.g. "0 changed, 41 skipped, 3 ok, 0 failed in 12.3 s"."""
    counts = report.counts()
    parts = [f"{counts['changed']} changed", f"{counts['skipped']} skipped", f"{counts['ok']} ok",
             f"{counts['failed']} failed"]
    if counts["not run"]:
        parts.append(f"{counts['not run']} not run")
    return f"{', '.join(parts)} in {report.seconds:.1f} s"


def render_run(report: RunReport, console: Console) -> None:
    table = Table(title="install: steps per host")
    table.add_column("host")
    for column in (*STATUSES, "not run", "time"):
        table.add_column(column, justify="right")
    for host in report.hosts:
        counts = report.counts(host)
        table.add_row(Text(host), *(str(counts[s]) for s in (*STATUSES, "not run")),
                      f"{report.host_seconds(host):.1f} s")
    console.print(table)
    if report.failure is not None:
        console.print(Text(report.failure.message(), style="red"))
    console.print(Text(summary_line(report)))
    console.print(Text(f"logs: {report.log_dir}/<host>.log"))


def render_checks(results: list[CheckResult], console: Console) -> None:
    table = Table(title="verify")
    for column in ("host", "check", "result", "detail"):
        table.add_column(column)
    for result in results:
        verdict = Text("PASS", style="green") if result.passed else Text("FAIL", style="bold red")
        table.add_row(Text(result.host), Text(result.name), verdict, Text(result.detail))
    console.print(table)
