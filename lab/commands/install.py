"""`lab plan`, `lab install`, `lab verify`: the install plan for the inventory, run on the hosts, proved."""

from __future__ import annotations

from lab.commands.common import console, context, say
from labcore.inventory import load_inventory
from labcore.paths import write_private


def _inputs(args):
    ctx = context(args)
    inventory = load_inventory(ctx.paths.inventory)
    from labcore.secrets import load_or_create

    return ctx, inventory, load_or_create(ctx.paths.secrets)


def plan(args) -> int:
    _, inventory, secrets = _inputs(args)
    from bootstrap.planner import build_plan

    built = build_plan(inventory, secrets)
    if args.json:
        print(built.to_json(secrets))
        return 0
    from bootstrap.report import render_plan

    render_plan(built, secrets, console)
    return 0


def install(args) -> int:
    ctx, inventory, secrets = _inputs(args)
    from bootstrap.components.keystone import openrc
    from bootstrap.planner import build_plan
    from bootstrap.report import render_run
    from bootstrap.runner import run_plan
    from lab.ssh import fabric_factory

    built = build_plan(inventory, secrets)
    say(f"installing OpenStack {inventory.release} ({inventory.os}) on {len(inventory.nodes)} hosts; "
        f"logs in {ctx.paths.logs}/")
    for which in ("admin", "demo"):
        write_private(ctx.paths.openrc(which), openrc(inventory, secrets, which))
    report = run_plan(built, inventory, fabric_factory(inventory), secrets, log_dir=ctx.paths.logs, progress=say)
    render_run(report, console)
    if not report.ok:
        say("the install stopped: fix what the failure above names, then run `make lab-install` again "
            "(it goes on from where it stopped)")
        return 1
    say(f"openrc files: {ctx.paths.openrc('admin')}, {ctx.paths.openrc('demo')} (mode 0600). Next: make lab-verify")
    return 0


def verify(args) -> int:
    _, inventory, secrets = _inputs(args)
    from bootstrap.report import render_checks
    from bootstrap.verify import run_checks, verify_checks
    from lab.ssh import fabric_factory

    results = run_checks(verify_checks(inventory), fabric_factory(inventory), secrets)
    render_checks(results, console)
    failed = [r for r in results if not r.passed]
    say(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        say("a failed check names its host; `lab install` repairs what it manages, then run `lab verify` again")
    return 1 if failed else 0
