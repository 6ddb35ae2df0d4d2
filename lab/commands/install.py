"""`lab plan`, `lab install`, `lab verify`: the install plan for the inventory, run on the hosts, proved."""

from __future__ import annotations

from lab.commands.common import config_drift, console, context, say, warn
from labcore.inventory import load_inventory
from labcore.paths import write_private


def _inputs(args, *, lock: bool = False, ssh: bool = False, drift_stops: bool = True):
    """lock: the command changes the lab (install); ssh: it logs into the hosts, so the key must be there.

    drift_stops: a config `lab up` has not taken stops the command before any SSH (exit 1);
    False (plan, install --check): the same line as a warning, and the command goes on."""
    ctx = context(args, lock=lock)
    inventory = load_inventory(ctx.paths.inventory, progress=warn)
    config_drift(ctx, inventory, args.config, stops=drift_stops)
    from labcore.front_door_cert import key_masking
    from labcore.secrets import load_secrets

    secrets = key_masking(load_secrets(ctx.paths.secrets, warn))  # the front door's key is file content in the plan
    if ssh:
        from lab.keypair import require_private_key

        require_private_key(ctx.paths, warn)
    return ctx, inventory, secrets


def plan(args) -> int:
    ctx, inventory, secrets = _inputs(args, drift_stops=False)
    from bootstrap.planner import build_plan

    built = build_plan(inventory, secrets, *_door_tls(ctx, inventory, make=False))
    if args.json:
        print(built.to_json(secrets))
        return 0
    from bootstrap.planner import left_out
    from bootstrap.report import render_plan, render_shell

    for chapter, why in left_out(inventory):  # first: what a reader of the guide would look for in vain
        say(f"{'# ' if args.shell else ''}left out (auth: {inventory.auth}, Swift alone): {chapter}: {why}")
    (render_shell if args.shell else render_plan)(built, secrets, console)
    return 0


def install(args) -> int:
    check = args.check
    ctx, inventory, secrets = _inputs(args, lock=not check, ssh=True, drift_stops=not check)
    from bootstrap.planner import build_plan
    from bootstrap.report import render_check, render_run
    from bootstrap.runner import run_plan
    from lab.ssh import fabric_factory

    built = build_plan(inventory, secrets, *_door_tls(ctx, inventory, make=not check))
    if check:
        say(f"checking what `lab install` would change on {len(inventory.nodes)} hosts (nothing is changed)")
        report = run_plan(built, inventory, fabric_factory(inventory), secrets, log_dir=ctx.paths.logs,
                          progress=say, check=True)
        render_check(report, console)
        if not report.ok:
            return 1
        say("something would change: `lab install` makes it so" if report.would_change else
            "nothing would change")
        return 3 if report.would_change else 0
    what = "Swift alone with TempAuth" if inventory.auth == "tempauth" else "OpenStack"
    say(f"installing {what} {inventory.release} ({inventory.os}) on {len(inventory.nodes)} hosts; "
        f"logs in {ctx.paths.logs}/")
    rc_files = _write_rc_files(ctx.paths, inventory, secrets)

    def reboot(node) -> None:
        """A host the upgrade asks to reboot: RebootInstances, back once it boots again (lab/reboot.py)."""
        from lab.reboot import reboot_nodes
        from lab.ssh import FabricRemote
        from labcore.errors import NotAvailableError

        if not ctx.target.connect():
            raise NotAvailableError(f"{node.name} asks for a reboot, but the {ctx.target.name} target's EC2 is not "
                                    f"running: `lab up` first, then `lab install` again")
        reboot_nodes(ctx.target.ec2_client(ctx.spec.region), [node], lambda n: FabricRemote(n, inventory),
                     progress=say)

    report = run_plan(built, inventory, fabric_factory(inventory), secrets, log_dir=ctx.paths.logs, progress=say,
                      reboot=reboot)
    render_run(report, console)
    if report.ok:
        _change_rings(ctx, inventory, secrets, report)
    from bootstrap.report_html import write_install_report

    page = write_install_report(ctx.paths, inventory, report, secrets, warn, plan=built)
    if not report.ok:
        say("the install stopped: fix what the failure above names, then run `make lab-install` again "
            "(it goes on from where it stopped)")
        _say_report(page)
        return 1
    say(f"{rc_files}. Next: make lab-verify")
    _say_report(page)
    return 0


def _door_tls(ctx, inventory, *, make: bool):
    """(the front door's server pair, the lab's CA certificate) for the plan: made or kept by
    `lab install` before the plan is built (labcore/front_door_cert.py), only read by `lab plan`
    and `--check`; (None, None) for a TempAuth lab, which has no door."""
    if inventory.auth == "tempauth":
        return None, None
    from lab import expiry
    from labcore.front_door import front_door
    from labcore.front_door_cert import DOOR_CERT, for_plan

    door = front_door(inventory)
    pair, ca, made = for_plan(ctx.paths.root, inventory.lab, door, expiry.now(), make=make)
    if made:
        say(f"the front door's certificate made for {', '.join((*door.names, *door.addresses))}: "
            f"{ctx.paths.root / DOOR_CERT} (signed by the lab's CA; its key, 0600, beside it)")
    return pair, ca


def _write_rc_files(paths, inventory, secrets) -> str:
    """The credentials files under .lab/<name>/ (0600): a Keystone lab's openrc files for this machine
    (the guide's, through the front door, trusting the lab's CA: lab/laptop_openrc.py), or a TempAuth
    lab's swiftrc files (ST_AUTH, ST_USER, ST_KEY) as on the controller; the line that names them."""
    if inventory.auth == "tempauth":
        from bootstrap.components.tempauth import swiftrc as text

        kind, path = "swiftrc", paths.swiftrc
    else:
        from lab.laptop_openrc import laptop_openrc

        def text(inventory, secrets, which):
            return laptop_openrc(inventory, secrets, which, paths.ca_cert)

        kind, path = "openrc", paths.openrc
    for which in ("admin", "demo"):
        write_private(path(which), text(inventory, secrets, which))
    return f"{kind} files: {path('admin')}, {path('demo')} (mode 0600)"


def _change_rings(ctx, inventory, secrets, report) -> None:
    """After the plan, the rings brought to the config's devices: new ones added, what leaves drained
    (bootstrap/ring_changes.py); what was drained is marked lab:drained, so the next `lab up`
    removes it. (`--check` names these changes through the plan's ring step.)"""
    from bootstrap.ring_changes import change_rings, needed
    from lab.ssh import fabric_factory

    if not needed(report, inventory):
        return
    result = change_rings(inventory, secrets, fabric_factory(inventory), log_dir=ctx.paths.logs, progress=say)
    for line in result.lines:
        say(line)
    if result.rounds:
        say(f"ring changes done in {result.rounds} rounds, {result.seconds:.0f} s")
    drained = result.drained_ids()
    if drained:
        from lab.shrink import mark_drained
        from labcore.errors import NotAvailableError

        if not ctx.target.connect():
            raise NotAvailableError(f"drained {', '.join(drained)}, but the {ctx.target.name} target's EC2 is not "
                                    f"running to mark them lab:drained: start it (`lab up`), then `lab install` "
                                    f"again (it finds them drained and marks them)")
        mark_drained(ctx.target.ec2_client(ctx.spec.region), ctx.spec.name, drained, say)


def _say_report(page) -> None:
    """The report page's path, last: the timeline and the verify table, open it in a browser."""
    if page is not None:
        say(f"report: {page} (open it in a browser)")


def verify(args) -> int:
    ctx, inventory, secrets = _inputs(args, ssh=True)
    from bootstrap.report import render_checks
    from bootstrap.report_html import write_verify_report
    from bootstrap.verify import run_checks, verify_checks
    from lab.ssh import fabric_factory

    concurrency = _tempest_options(args, inventory)
    results = run_checks(verify_checks(inventory), fabric_factory(inventory), secrets)
    render_checks(results, console)
    page = write_verify_report(ctx.paths, inventory, results, secrets, warn)
    failed = [r for r in results if not r.passed]
    say(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        say("a failed check names its host; `lab install` repairs what it manages, then run `lab verify` again"
            + (" (Tempest was not run: it judges a cloud that passes these checks)" if concurrency else ""))
    elif concurrency:
        from lab.conformance import run_conformance

        ok, page = run_conformance(ctx, inventory, secrets, concurrency)
        failed = [] if ok else ["tempest"]
    _say_report(page)
    return 1 if failed else 0


def _tempest_options(args, inventory) -> int:
    """The Tempest concurrency asked for (0: no Tempest); bad input is one line, before any host is asked."""
    if not getattr(args, "tempest", False):
        return 0
    from labcore.errors import ConfigError

    if inventory.auth == "tempauth":
        raise ConfigError("lab verify", "--tempest", "a Tempest run needs Keystone, and this lab is Swift only "
                          "(auth: tempauth); its own checks are what `lab verify` runs")
    raw = str(args.concurrency).strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 16:
        raise ConfigError("lab verify", "--concurrency", f"a number of Tempest workers from 1 to 16, got {raw[:20]!r}")
    return int(raw)
