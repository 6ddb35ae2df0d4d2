"""Show plans, run reports, --check change sets and verify results to a person, secrets masked.

Rendering is kept apart from running so tests assert on RunReport and CheckResult data,
and so the CLI decides where text goes. Every dynamic cell is a Text, never markup:
stderr full of [brackets] must print as it is.
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bootstrap.actions import LINE
from bootstrap.changes import BatchEntry, RebootNow, Run, WaitFor, Write
from bootstrap.decide import Context, decide_step, facts_for
from bootstrap.facts import absent_answers
from bootstrap.plan import PHASE_NEEDS, Plan, Step
from bootstrap.render import write_command, write_in_place_command
from bootstrap.results import STATUSES, RunReport
from bootstrap.verify import CheckResult
from labcore.secrets import Secrets

DIFF_LINES = 60  # of one file's diff in `lab install --check`; the plan has the whole file


def _hosts(hosts: tuple[str, ...]) -> str:
    return ", ".join(hosts) if len(hosts) <= 4 else f"{len(hosts)} hosts: {', '.join(hosts[:3])}, ..."


def _needs(phase: str, present: set[str]) -> list[str]:
    """The phases phase waits for on a host, a phase the plan lacks (a TempAuth lab's keystone) replaced
    by what that one would have waited for."""
    found: list[str] = []
    for need in PHASE_NEEDS[phase]:
        for name in ([need] if need in present else _needs(need, present)):
            if name not in found:
                found.append(name)
    return found


def _phase_header(phase: str, steps: list[Step], present: set[str]) -> str:
    needs = _needs(phase, present)
    after = f"; after {', '.join(needs)} on the same host" if needs else ""
    return f"phase {phase} ({len(steps)} steps{after})"


def _waits(step: Step) -> str:
    others = ", ".join(sorted(step.waits_for))
    if step.after_step and others:
        return f"  (once {step.after_step} is done on {others})"
    return f"  (after {', '.join(step.after)} finished what comes before)" if step.after else ""


def render_plan(plan: Plan, secrets: Secrets, console: Console) -> None:
    """Each step in the guide's words: where it runs, the guide's section, one line per action."""
    present = {phase for phase, _ in plan.phases()}
    for phase, steps in plan.phases():
        console.print(Text(_phase_header(phase, steps, present), style="bold"))
        for step in steps:
            waits = _waits(step)
            lines = [f"  {step.name}  on {_hosts(step.hosts)}{waits}"]
            if step.guide:
                lines.append(f"      guide: {step.guide}")
            lines += [f"    - {action.says()}" for action in step.actions]
            console.print(Text(secrets.mask("\n".join(line[:LINE] for line in lines))))
    hosts = sorted({h for s in plan.steps for h in s.hosts})
    console.print(Text(f"{len(plan.steps)} steps on {len(hosts)} hosts; `lab plan --shell` shows the shell they send, "
                       "`lab install --check` what they would change"))


def render_shell(plan: Plan, secrets: Secrets, console: Console) -> None:
    """The raw text: each step's facts (one round trip) and what it sends to a fresh host."""
    for step in plan.ordered():
        facts = list(dict.fromkeys(f for a in step.actions for f in facts_for(a)))
        decision = decide_step(step.actions, absent_answers(facts), Context())
        lines = [f"# ---- {step.phase}/{step.name} on {', '.join(step.hosts)}" + (f"  ({step.guide})" if step.guide
                                                                                  else "")]
        if facts:
            lines.append("# facts (asked in one round trip with the phase's others):")
            lines += [f.command() for f in facts]
        lines.append("# sent to a host where nothing is done yet:" if decision.sends else "# nothing to send")
        lines += [_shell(send) for send in decision.sends]
        console.print(Text(secrets.mask("\n".join(lines))), soft_wrap=True)


def _shell(send) -> str:
    if isinstance(send, Write):
        command = (write_in_place_command(send.path) if send.in_place else
                   write_command(send.path, send.mode, send.owner))
        size = f"{len(send.data)} bytes" if send.data is not None else "the source's bytes"
        return f"{command}    # stdin: base64 of {size}"
    if isinstance(send, Run):
        return send.command + (f"    # stdin: {send.stdin}" if send.stdin else "")
    if isinstance(send, WaitFor):
        return f"{send.wait.command(15)}    # asked until ready, at most {send.wait.seconds:.0f} s"
    if isinstance(send, RebootNow):
        return "# the lab reboots the host through the cloud (RebootInstances) and waits until it is back"
    if isinstance(send, BatchEntry):
        return json.dumps(send.as_json())
    return repr(send)


def summary_line(report: RunReport) -> str:
    """The run in one line, e.g. "0 changed, 41 skipped, 3 ok, 0 failed in 12.3 s"."""
    counts = report.counts()
    changed = "would change" if report.check else "changed"
    parts = [f"{counts['changed']} {changed}", f"{counts['skipped']} skipped", f"{counts['ok']} ok",
             f"{counts['failed']} failed"]
    if counts["not run"]:
        parts.append(f"{counts['not run']} not run")
    return f"{', '.join(parts)} in {report.seconds:.1f} s"


def render_run(report: RunReport, console: Console) -> None:
    table = Table(title="install --check: steps per host" if report.check else "install: steps per host")
    table.add_column("host")
    for column in (*STATUSES, "not run", "time"):
        table.add_column("would change" if column == "changed" and report.check else column, justify="right")
    for host in report.hosts:
        counts = report.counts(host)
        table.add_row(Text(host), *(str(counts[s]) for s in (*STATUSES, "not run")),
                      f"{report.host_seconds(host):.1f} s")
    console.print(table)
    if report.failure is not None:
        console.print(Text(report.failure.message(), style="red"))
    console.print(Text(summary_line(report)))
    console.print(Text(f"logs: {report.log_dir}/<host>.log"))


def render_check(report: RunReport, console: Console) -> None:
    """Per host, the steps that would change, each action's change and the diff of each file."""
    for host in report.hosts:
        mine = [r for r in report.results if r.host == host and r.status == "changed"]
        console.print(Text(f"{host}: {len(mine)} steps would change" if mine else f"{host}: nothing would change",
                           style="bold"))
        for result in mine:
            console.print(Text(f"  {result.phase}/{result.step}" + (f"  ({result.guide})" if result.guide else "")))
            for change in result.changes:
                console.print(Text(f"    {'~' if change.changes_host else '.'} {change.says}"))
                if change.diff:
                    console.print(Text(_indented(change.diff)), end="")
    render_run(report, console)


def _indented(diff: str, limit: int = DIFF_LINES) -> str:
    lines = diff.splitlines()
    shown = [f"      {line}\n" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"      ... ({len(lines) - limit} more lines; `lab plan --json` has the whole file)\n")
    return "".join(shown)


def render_checks(results: list[CheckResult], console: Console) -> None:
    table = Table(title="verify")
    for column in ("host", "check", "result", "detail"):
        table.add_column(column)
    for result in results:
        verdict = Text("PASS", style="green") if result.passed else Text("FAIL", style="bold red")
        table.add_row(Text(result.host), Text(result.name), verdict, Text(result.detail))
    console.print(table)
