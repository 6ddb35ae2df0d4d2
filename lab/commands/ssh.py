"""`lab ssh NODE [-- CMD]`: hand over to OpenSSH with the lab's ssh_config."""

from __future__ import annotations

import os
import sys

from lab.commands.common import context, warn
from labcore.errors import LabError
from labcore.inventory import load_inventory


def run(args) -> int:
    ctx = context(args)
    node = load_inventory(ctx.paths.inventory, progress=warn).node(args.node)
    from lab.keypair import require_private_key

    require_private_key(ctx.paths, warn)
    command = list(args.remote_command)
    if command[:1] == ["--"]:
        command = command[1:]
    argv = ["ssh", "-F", str(ctx.paths.ssh_config), node.name, *command]
    sys.stdout.flush()
    try:
        os.execvp("ssh", argv)
    except FileNotFoundError:
        raise LabError("ssh (the OpenSSH client) is not installed: apt-get install openssh-client") from None
    return 0
