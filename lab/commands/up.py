"""`lab up`: create (or complete) the lab's cloud resources, then prepare its hosts over SSH."""

from __future__ import annotations

from lab.commands.common import Context, context, say
from lab.commands.lifetime import cost_line, expiry_line, warnings
from labcore.inventory import Inventory


def run(args) -> int:
    ctx = context(args, lock=not args.dry_run)
    from lab.drift import refuse_auth_switch

    refuse_auth_switch(ctx.spec, ctx.paths.inventory, args.config)  # before anything is made or even priced
    say(cost_line(ctx.spec, ctx.target))  # before anything is created, or even asked
    for line in warnings(ctx.spec):
        say(line)
    if args.dry_run:
        return dry_run(ctx)
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
    say(expiry_line(report.expiry.expires_at, report.expiry.moved))
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


def dry_run(ctx: Context) -> int:
    """What `lab up` would make, from the config alone: no call to any API, nothing created."""
    spec = ctx.spec
    volumes = [f"{n}/{v} {size} GiB" for n, s in spec.nodes.items() for v, size in s.volumes.items()]
    say(f"--dry-run: lab {spec.name} in {spec.region} ({ctx.target.name}) would have {len(spec.nodes)} instances ("
        + ", ".join(f"{n} {s.type}" for n, s in spec.nodes.items()) + f"), {len(volumes)} Swift volumes ("
        + ", ".join(volumes) + f", {spec.volume_type}), a security group and a key pair; "
        + ("it would expire after " + spec.expires_after if spec.expiry else "it would never expire")
        + ". Nothing was created or asked; `lab up` makes what does not exist yet")
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
