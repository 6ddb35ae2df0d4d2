"""The guide's `openstack` commands, many in one process (keystone and swift chapters).

Each `openstack` call spends 2-5 s starting Python, loading its plugins and asking for a
token before it does a 0.1 s API call; the identity chapters make a dozen of them. A step
here writes the commands it needs, one per line, exactly as the guide types them but
without the word `openstack`, and one Python process runs them in order through the
client's own shell (so parsing, defaults and output are the CLI's) with one token,
stopping at the first one that fails. What is needed is decided by queries on Keystone's database
(0.1 s each), so a re-run sends nothing that already exists.
"""

from __future__ import annotations

import shlex

from bootstrap.components.database import mysql
from bootstrap.context import PlanContext, as_admin
from bootstrap.plan import FileSpec, Step

BATCH = "/usr/local/lib/openstack-ec2-lab/openstack_batch.py"

# Runs on the host's python (2.7 for the guide's Ubuntu 18.04 packages, 3 on Debian 12).
BATCH_SOURCE = '''\
"""openstack-ec2-lab: openstack commands, one per line on stdin, run in this one process.

The first goes through the CLI's whole start (options from the environment, a token);
the others reuse that session, as the CLI's own interactive mode does.
"""
import shlex
import sys

from openstackclient.shell import OpenStackShell

commands = [shlex.split(line) for line in sys.stdin if line.strip()]
shell = OpenStackShell()
for number, argv in enumerate(commands):
    code = shell.run(argv) if number == 0 else shell.run_subcommand(argv)
    if code:
        sys.exit("openstack %s ...: exit %s" % (" ".join(argv[:2]), code))
'''


def batch_step(ctx: PlanContext) -> Step:
    return Step(name="openstack-batch", phase="keystone", hosts=(ctx.controller.name,),
                files=(FileSpec(BATCH, BATCH_SOURCE),))


def run_batch(python: str, lines: list[str]) -> str:
    """Shell text: each line prints zero or more commands; one process runs them all as admin."""
    return as_admin(f"{{ {' '.join(line.rstrip(';') + ';' for line in lines)} }} | {python} {BATCH}")


def say(command: str) -> str:
    """A line that always asks for command."""
    return f"echo {shlex.quote(command)}"


def say_unless_counted(sql: str, command: str) -> str:
    """A line asking for command unless Keystone's database already counts what it makes.
    If the query itself fails, the command is asked for and says what is wrong."""
    return f'n=$({mysql(sql, "keystone")}) && [ "$n" != 0 ] || {say(command)}'


def say_set_or_create(sql: str, set_command: str, create_command: str) -> str:
    """set_command when the database counts the entity, else create_command."""
    return (f'if n=$({mysql(sql, "keystone")}) && [ "$n" != 0 ]; then {say(set_command)}; '
            f"else {say(create_command)}; fi")


def confirm(check: str, what: str) -> str:
    """The step's check once more after its batch: the commands ran, but did they make it so?"""
    message = shlex.quote(f"{what}: not all in keystone after the commands above")
    return f"{check} || {{ echo {message} >&2; false; }}"
