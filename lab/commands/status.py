"""`lab status`: what exists of the lab, found by its tags."""

from __future__ import annotations

import json

from rich.table import Table

from lab.commands.common import console, context, say
from lab.commands.lifetime import lifetime_of


def run(args) -> int:
    ctx = context(args)
    running = ctx.target.connect()
    from lab.discovery import find_lab

    found = find_lab(ctx.target.ec2_client(ctx.spec.region), ctx.spec.name) if running else None
    inventory = _inventory(ctx)
    status = {"lab": ctx.spec.name, "region": ctx.spec.region, "target": ctx.target.name,
              "endpoint_url": ctx.target.endpoint_url, "running": running,
              "auth": inventory.auth if inventory else ctx.spec.auth}
    status.update(found.as_dict() if found else {"instances": [], "volumes": [], "security_groups": [],
                                                 "key_pairs": []})
    if found is not None and not found.is_empty():
        status["lifetime"] = lifetime_of(ctx.spec, found)
        if inventory is not None:
            from lab.commands.access import access_of

            status["access"] = access_of(ctx.paths, inventory)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    _print(status)
    return 0


def _inventory(ctx):
    """The lab's inventory (the auth mode it was made with, where its front door is); None when there
    is none yet or it is damaged: status shows what the cloud has, and `lab up` writes it again."""
    from labcore.inventory import load_inventory
    from labcore.paths import StateFileError

    if not ctx.paths.inventory.exists():
        return None
    try:
        return load_inventory(ctx.paths.inventory)
    except StateFileError:
        return None


def _print(status: dict) -> None:
    if not status["running"]:
        say(f"lab {status['lab']}: the {status['target']} target is not running (nothing exists); "
            f"`make lab-up` creates the lab")
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
    life = status.get("lifetime")
    if life:
        price = "price unknown" if life["price_per_hour"] is None else f"${life['price_per_hour']:.3f}/hour"
        ran = f"running for {life['running_for']}, cost so far {life['cost_so_far']} ({price})" \
            if life["running_for"] else f"no instance running ({price})"
        where = "" if status["target"] == "aws" else " if it ran on AWS: the twin costs nothing"
        say(f"{ran}{where}; {life['expires']}")
    if status["auth"] == "tempauth":
        say("Swift only (auth: tempauth): no Keystone, MariaDB, RabbitMQ or etcd, no dashboard or HTTPS front door "
            "(443 stays closed); credentials in the swiftrc files")
    access = status.get("access")
    if access:
        say(f"dashboard: {access['dashboard']} (trust the lab's CA {access['ca_cert']})")
        for login in access["logins"]:
            say(f"  log in as {login['as']}: domain {login['domain']}, user {login['user']}, password: "
                f"{login['password_in']}")
        say('  from this shell: eval "$(lab openrc demo)" (or admin), then openstack / swift')
    say(f"security groups: {', '.join(g['group_id'] for g in status['security_groups']) or 'none'}; "
        f"key pairs: {', '.join(k['key_name'] for k in status['key_pairs']) or 'none'}")
