"""`lab up`: create (or complete) the lab's cloud resources, then prepare its hosts over SSH."""

from __future__ import annotations

from lab.commands.common import Context, context, say
from labcore.inventory import Inventory


def run(args) -> int:
    ctx = context(args, lock=True)
    ctx.target.start(ctx.spec, say)
    from lab import provision
    from lab.discovery import find_lab
    from labcore.secrets import ensure_secrets

    line = ctx.target.describe(ctx.spec)
    if line:
        say(line)
    # Before anything is launched, so a lab with instances always had its secrets first.
    ensure_secrets(ctx.paths.ensure(say), say, hosts_exist=lambda: bool(
        find_lab(ctx.target.ec2_client(ctx.spec.region), ctx.spec.name).instances))
    report = provision.up(ctx.spec, ctx.target, ctx.paths, progress=say)
    if report.created:
        say(f"created {len(report.created)} resources: " + ", ".join(report.created))
    else:
        say("nothing to create: every resource of the lab exists")
    if not args.no_ssh:
        prepare_hosts(ctx, report.inventory)
    from lab.ec2 import retry_summary

    if retry_summary():
        say(retry_summary())
    if args.no_ssh:
        say(f"--no-ssh: inventory at {ctx.paths.inventory}; no host was contacted")
        return 0
    say(f"lab {ctx.spec.name} is up. Next: make lab-install   (ssh -F {ctx.paths.ssh_config} {ctx.spec.controller})")
    return 0


def prepare_hosts(ctx: Context, inventory: Inventory) -> None:
    from lab.prepare import prepare_hosts as prepare
    from lab.ssh import fabric_factory, wait_for_ssh

    ctx.target.pin_host_keys(ctx.target.ec2_client(ctx.spec.region), inventory, say)
    factory = fabric_factory(inventory)
    say(f"waiting for SSH on {len(inventory.nodes)} hosts")
    wait_for_ssh(inventory, factory, progress=say)
    say("preparing hosts: the lab's programs, first boot done (cloud-init, apt locks), hostname, /etc/hosts "
        "(the same steps `lab install` starts with); then the Swift volumes (format only blank devices, mount, fstab)")
    for host in prepare(inventory, factory, progress=say, log_dir=ctx.paths.logs):
        say(f"  {host}")
