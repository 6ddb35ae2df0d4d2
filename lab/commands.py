"""One function per CLI command: load what it needs, call the modules that do the work, show the result.

Config errors surface before any cloud call, because every command loads and validates
the config first and only then builds a client.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lab.config import LabSpec, load_config
from lab.errors import LabError, NotAvailableError
from lab.inventory import Inventory, load_inventory
from lab.paths import LabPaths, state_root, write_private
from lab.target import Target

# Piped output (a file, a pager, a test) is not cut to 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False)


def say(message: str) -> None:
    console.print(message, markup=False)


@dataclass(frozen=True)
class Context:
    spec: LabSpec
    target: Target
    paths: LabPaths


def sim_state_dir() -> Path:
    return state_root() / "sim"


def _twin():
    """The twin's client module (imported late: TARGET=aws never loads it)."""
    from lab.sim import client

    return client


def _context(args, *, start_twin: bool = False) -> Context:
    spec = load_config(args.config)
    paths = LabPaths.for_lab(spec.name)
    if args.target == "aws":
        return Context(spec, Target("aws"), paths)
    twin = _twin()
    if start_twin:
        twin.check_host()
        twin.prepare_image(progress=say)
        endpoint = twin.ensure_running(sim_state_dir(), spec.region)
    else:
        endpoint = twin.endpoint(sim_state_dir())
        if endpoint is None:
            raise NotAvailableError("the sim twin is not running: run `make lab-up` (lab up) first")
    return Context(spec, Target("sim", endpoint_url=endpoint), paths)


def _sim_caller_cidr(subnet_cidr: str) -> str:
    """On the twin the caller is this machine, reaching the hosts from the bridge's gateway address."""
    gateway = next(ipaddress.IPv4Network(subnet_cidr).hosts())
    return f"{gateway}/32"


# ---------------------------------------------------------------- up
def cmd_up(args) -> int:
    ctx = _context(args, start_twin=True)
    from lab import provision
    from lab.network import detect_caller_cidr

    if ctx.target.name == "sim":
        say(f"target sim: a local twin of EC2 at {ctx.target.endpoint_url}; its hosts run Debian 12 "
            f"(the config's {ctx.spec.openstack.os} applies to TARGET=aws)")
    resolver = _sim_caller_cidr if ctx.target.name == "sim" else detect_caller_cidr
    report = provision.up(ctx.spec, ctx.target, ctx.paths.ensure(), resolve_caller=resolver, progress=say)
    if report.created:
        say(f"created {len(report.created)} resources: " + ", ".join(report.created))
    else:
        say("nothing to create: every resource of the lab exists")
    if args.no_ssh:
        say(f"--no-ssh: inventory at {ctx.paths.inventory}; no host was contacted")
        return 0
    _prepare_hosts(ctx, report.inventory)
    say(f"lab {ctx.spec.name} is up. Next: make lab-install   (ssh -F {ctx.paths.ssh_config} {ctx.spec.controller})")
    return 0


def _pin_sim_host_keys(ctx: Context, inventory: Inventory) -> None:
    """The twin made each container's host keys: pin them so SSH trusts exactly those."""
    twin = _twin()
    ec2 = ctx.target.ec2_client(ctx.spec.region)
    keys = twin.wait_for_bodies(ec2, [n.instance_id for n in inventory.nodes], sim_state_dir(), timeout=300)
    lines = [f"{node.ssh_host} {key}" for node in inventory.nodes for key in keys[node.instance_id]]
    write_private(Path(inventory.known_hosts), "\n".join(lines) + "\n")


def _prepare_hosts(ctx: Context, inventory: Inventory) -> None:
    from lab.prepare import prepare_hosts
    from lab.ssh import fabric_factory, wait_for_ssh

    if ctx.target.name == "sim":
        _pin_sim_host_keys(ctx, inventory)
    factory = fabric_factory(inventory)
    say(f"waiting for SSH on {len(inventory.nodes)} hosts")
    wait_for_ssh(inventory, factory, progress=say)
    say("preparing hosts: hostname, /etc/hosts, Swift volumes (format only blank devices, mount, fstab)")
    for host in prepare_hosts(inventory, factory, progress=say):
        say(f"  {host}")


# ---------------------------------------------------------------- down
def cmd_down(args) -> int:
    spec = load_config(args.config)
    paths = LabPaths.for_lab(spec.name)
    twin = _twin() if args.target == "sim" else None
    from lab import teardown

    if twin is not None:
        endpoint = twin.endpoint(sim_state_dir())
        if endpoint is None:
            removed = twin.cleanup_without_daemon(sim_state_dir())
            teardown.remove_local_state(paths)
            say("the twin was not running; removed what it left on this machine:" if removed
                else "the twin was not running and left nothing behind")
            for line in removed:
                say(f"  {line}")
            return 0
        target = Target("sim", endpoint_url=endpoint)
    else:
        target = Target("aws")
    report = teardown.down(spec.name, spec.region, target, progress=say)
    if args.target == "sim":
        twin.wait_until_gone(sim_state_dir(), timeout=120)
    teardown.remove_local_state(paths)
    if report.removed:
        say(f"removed {len(report.removed)} resources: " + ", ".join(report.removed))
    else:
        say(f"nothing of lab {spec.name} was left to remove")
    return 0


# ---------------------------------------------------------------- status
def cmd_status(args) -> int:
    spec = load_config(args.config)
    if args.target == "sim":
        endpoint = _twin().endpoint(sim_state_dir())
        target = Target("sim", endpoint_url=endpoint) if endpoint else None
    else:
        target = Target("aws")
    from lab.discovery import find_lab

    found = find_lab(target.ec2_client(spec.region), spec.name) if target else None
    status = _status_data(spec, target, found)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    _print_status(status)
    return 0


def _status_data(spec: LabSpec, target: Target | None, found) -> dict:
    data = {"lab": spec.name, "region": spec.region, "target": target.name if target else "sim",
            "endpoint_url": target.endpoint_url if target else None,
            "running": target is not None}
    if found is None:
        data.update(instances=[], volumes=[], security_groups=[], key_pairs=[])
        return data
    data.update(found.as_dict())
    return data


def _print_status(status: dict) -> None:
    if not status["running"]:
        say(f"lab {status['lab']}: the sim twin is not running (nothing exists); `make lab-up` creates the lab")
        return
    where = status["endpoint_url"] or "AWS"
    table = Table(title=f"lab {status['lab']} ({status['target']}, {status['region']}, {where})")
    for column in ("node", "role", "instance", "type", "state"):
        table.add_column(column, no_wrap=True)
    for column in ("private ip", "public ip", "volumes"):
        table.add_column(column, overflow="fold")
    for inst in status["instances"]:
        vols = [f"{v['name']}={v['volume_id']} ({v['state']})" for v in status["volumes"] if v["node"] == inst["node"]]
        table.add_row(inst["node"], inst["role"], inst["instance_id"], inst["instance_type"], inst["state"],
                      inst["private_ip"] or "-", inst["public_ip"] or "-", "\n".join(vols) or "-")
    console.print(table)
    say(f"security groups: {', '.join(g['group_id'] for g in status['security_groups']) or 'none'}; "
        f"key pairs: {', '.join(k['key_name'] for k in status['key_pairs']) or 'none'}")


# ---------------------------------------------------------------- plan / install / verify / ssh
def _install_inputs(args):
    spec = load_config(args.config)
    paths = LabPaths.for_lab(spec.name)
    inventory = load_inventory(paths.inventory)
    from lab.secrets import load_or_create

    return spec, paths, inventory, load_or_create(paths.secrets)


def cmd_plan(args) -> int:
    _, _, inventory, secrets = _install_inputs(args)
    from bootstrap.planner import build_plan

    plan = build_plan(inventory, secrets)
    if args.json:
        print(plan.to_json(secrets))
        return 0
    from bootstrap.report import render_plan

    render_plan(plan, secrets, console)
    return 0


def cmd_install(args) -> int:
    spec, paths, inventory, secrets = _install_inputs(args)
    from bootstrap.components.keystone import openrc
    from bootstrap.planner import build_plan
    from bootstrap.report import render_run
    from bootstrap.runner import run_plan
    from lab.ssh import fabric_factory

    plan = build_plan(inventory, secrets)
    say(f"installing OpenStack {inventory.release} ({inventory.os}) on {len(inventory.nodes)} hosts; "
        f"logs in {paths.logs}/")
    for which in ("admin", "demo"):
        write_private(paths.openrc(which), openrc(inventory, secrets, which))
    report = run_plan(plan, inventory, fabric_factory(inventory), secrets, log_dir=paths.logs, progress=say)
    render_run(report, console)
    say(f"openrc files: {paths.openrc('admin')}, {paths.openrc('demo')} (mode 0600). Next: make lab-verify")
    return 0 if report.ok else 1


def cmd_verify(args) -> int:
    _, _, inventory, secrets = _install_inputs(args)
    from bootstrap.report import render_checks
    from bootstrap.verify import run_checks, verify_checks
    from lab.ssh import fabric_factory

    results = run_checks(verify_checks(inventory), fabric_factory(inventory), secrets)
    render_checks(results, console)
    failed = [r for r in results if not r.passed]
    say(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def cmd_ssh(args) -> int:
    spec = load_config(args.config)
    paths = LabPaths.for_lab(spec.name)
    inventory = load_inventory(paths.inventory)
    node = inventory.node(args.node)
    command = list(args.remote_command)
    if command[:1] == ["--"]:
        command = command[1:]
    argv = ["ssh", "-F", str(paths.ssh_config), node.name, *command]
    sys.stdout.flush()
    try:
        os.execvp("ssh", argv)
    except FileNotFoundError:
        raise LabError("ssh (the OpenSSH client) is not installed: apt-get install openssh-client") from None
    return 0
