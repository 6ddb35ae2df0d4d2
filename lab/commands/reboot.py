"""`lab reboot [NODE...]`: reboot nodes through the EC2 API and wait until they are back."""

from __future__ import annotations

from lab.commands.common import config_drift, context, say, warn
from labcore.errors import NotAvailableError
from labcore.inventory import load_inventory


def run(args) -> int:
    ctx = context(args, lock=True)
    if not ctx.target.connect():
        raise NotAvailableError(f"the {ctx.target.name} target is not running: `lab up` first")
    inventory = load_inventory(ctx.paths.inventory, progress=warn)
    config_drift(ctx, inventory, args.config, stops=True)
    from lab.keypair import require_private_key

    require_private_key(ctx.paths, warn)
    nodes = [inventory.node(name) for name in args.nodes] if args.nodes else list(inventory.nodes)
    from lab.reboot import reboot_nodes
    from lab.ssh import FabricRemote

    reboot_nodes(ctx.target.ec2_client(ctx.spec.region), nodes, lambda node: FabricRemote(node, inventory),
                 progress=say)
    say(f"{len(nodes)} hosts rebooted and back. Next: make lab-verify")
    return 0
