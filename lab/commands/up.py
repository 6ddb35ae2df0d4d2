"""`lab up`: create (or complete) the lab's cloud resources, then prepare its hosts over SSH."""

from __future__ import annotations

from lab.commands.common import Context, context, say
from labcore.inventory import Inventory


def run(args) -> int:
    ctx = context(args)
    ctx.target.start(ctx.spec, say)
    from lab import provision

    line = ctx.target.describe(ctx.spec)
    if line:
        say(line)
    report = provision.up(ctx.spec, ctx.target, ctx.paths.ensure(), progress=say)
    if report.created:
        say(f"created {len(report.created)} resources: " + ", ".join(report.created))
    else:
        say("nothing to create: every resource of the lab exists")
    if args.no_ssh:
        say(f"--no-ssh: inventory at {ctx.paths.inventory}; no host was contacted")
        return 0
    prepare_hosts(ctx, report.inventory)
    say(f"lab {ctx.spec.name} is up. Next: make lab-install   (ssh -F {ctx.paths.ssh_config} {ctx.spec.controller})")
    return 0


def prepare_hosts(ctx: Context, inventory: Inventory) -> None:
    from lab.prepare import prepare_hosts as prepare
    from lab.ssh import fabric_factory, wait_for_ssh

    ctx.target.pin_host_keys(ctx.target.ec2_client(ctx.spec.region), inventory, say)
    factory = fabric_factory(inventory)
    say(f"waiting for SSH on {len(inventory.nodes)} hosts")
    wait_for_ssh(inventory, factory, progress=say)
    say("preparing hosts: hostname, /etc/hosts, Swift volumes (format only blank devices, mount, fstab)")
    for host in prepare(inventory, factory, progress=say):
        say(f"  {host}")
