"""`lab up`: create (or complete) the lab's cloud resources, then prepare its hosts over SSH."""

from __future__ import annotations

from lab import expiry
from lab.commands.common import Context, context, say
from lab.commands.lifetime import cost_line, expiry_line, warnings
from lab.userdata import user_data
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
    if ctx.spec.auth == "keystone":  # a TempAuth lab has no front door, so nothing to sign
        ensure_lab_ca(ctx)
    report = provision.up(ctx.spec, ctx.target, ctx.paths, progress=say)
    if report.created:
        say(f"created {len(report.created)} resources: " + ", ".join(report.created))
    else:
        say("nothing to create: every resource of the lab exists")
    say(expiry_line(report.expiry.expires_at, report.expiry.moved))
    if not args.no_ssh:
        prepare_hosts(ctx, report.inventory, report.ssh_sources)
    from lab.ec2 import retry_summary

    if retry_summary():
        say(retry_summary())
    if args.no_ssh:
        say(f"--no-ssh: inventory at {ctx.paths.inventory}; no host was contacted")
        return 0
    say(f"lab {ctx.spec.name} is up. Next: make lab-install   (ssh -F {ctx.paths.ssh_config} {ctx.spec.controller})")
    return 0


def ensure_lab_ca(ctx: Context) -> None:
    """The lab's own CA (labcore/lab_ca.py) in .lab/<name>/, made once, with the lab: it signs the
    front door's certificate, and its certificate is what the user's clients and browser trust.
    Its key never leaves this folder; one that others could read is put back to 0600."""
    from labcore import lab_ca
    from labcore.paths import tighten

    made = not (ctx.paths.ca_key.exists() and ctx.paths.ca_cert.exists())
    lab_ca.ensure_ca(ctx.paths.root, ctx.spec.name, expiry.now())
    tighten(ctx.paths.ca_key, say)
    if made:
        say(f"the lab's CA made: {ctx.paths.ca_cert} (trust it to reach the cloud over HTTPS; its key "
            f"{ctx.paths.ca_key.name}, 0600, never leaves this folder)")


def dry_run(ctx: Context) -> int:
    """What `lab up` would make, from the config alone: no call to any API, nothing created.

    The user data shown is a new lab's (expiring expires_after from now); a lab that exists
    keeps the time of its lab:expires-at tag, and its instances' user data says that one."""
    spec = ctx.spec
    volumes = [f"{n}/{v} {size} GiB" for n, s in spec.nodes.items() for v, size in s.volumes.items()]
    say(f"--dry-run: lab {spec.name} in {spec.region} ({ctx.target.name}) would have {len(spec.nodes)} instances ("
        + ", ".join(f"{n} {s.type}" for n, s in spec.nodes.items()) + f"), {len(volumes)} Swift volumes ("
        + ", ".join(volumes) + f", {spec.volume_type}), a security group and a key pair; "
        + ("it would expire after " + spec.expires_after if spec.expiry else "it would never expire")
        + ". Nothing was created or asked; `lab up` makes what does not exist yet")
    say(launch_line(spec))
    data = user_data(expiry.expires_at(spec.expiry))
    if data is None:
        say("user data: none (the lab never expires, so no power-off is scheduled at launch)")
    else:
        say("user data of every instance (cloud-init runs it at every boot; shown for a lab made now):")
        say(data.rstrip("\n"))
    return 0


def launch_line(spec) -> str:
    """What every RunInstances asks for beyond EC2's defaults (lab/instances.py launch_options)."""
    unlimited = [n for n, s in spec.nodes.items() if s.unlimited]
    credits = "CPU credits standard" + (f" (unlimited on {', '.join(unlimited)})" if unlimited else "")
    address = (f"; in {spec.subnet} with a public IPv4 address on the network interface" if spec.subnet else "")
    return (f"each instance: IMDSv2 only (HttpTokens required), root and Swift volumes encrypted with the account's "
            f"default EBS key, {credits} on burstable types, terminated when it powers off{address}")


def prepare_hosts(ctx: Context, inventory: Inventory, allowed: list[str]) -> None:
    """allowed: the sources the security group lets SSH in from (said if a host stays silent)."""
    from lab.prepare import prepare_hosts as prepare
    from lab.ssh import fabric_factory, wait_for_ssh

    ctx.target.pin_host_keys(ctx.target.ec2_client(ctx.spec.region), inventory, say)
    factory = fabric_factory(inventory)
    say(f"waiting for SSH on {len(inventory.nodes)} hosts")
    wait_for_ssh(inventory, factory, progress=say, allowed=allowed)
    say("preparing hosts: the lab's programs, first boot done (cloud-init, apt locks), hostname, /etc/hosts "
        "(the same steps `lab install` starts with); then the Swift volumes (format only blank devices, mount, fstab)")
    for host in prepare(inventory, factory, progress=say, log_dir=ctx.paths.logs):
        say(f"  {host}")
