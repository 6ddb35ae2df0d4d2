"""`lab` / `python -m lab`: parse arguments, run one command, map errors to exit codes.

Thin on purpose: the work lives in lab/commands.py. A LabError is printed as one line
(exit 2 for bad input, 1 for a failure on the cloud or a host), never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from lab.errors import LabError
from lab.target import TARGETS


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parser.add_argument("-c", "--config", default=default(os.environ.get("CONFIG", "configs/lab.yaml")),
                        help="lab description (default: configs/lab.yaml, or $CONFIG)")
    parser.add_argument("--target", choices=TARGETS, default=default(os.environ.get("TARGET", "sim")),
                        help="aws = real EC2 (spends money); sim = the local twin of EC2 (default, or $TARGET)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lab", description="Build an OpenStack Rocky test lab on EC2 or its local twin.")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p, top=False)
        return p

    up = command("up", "create the lab's cloud resources and prepare the hosts (hostnames, /etc/hosts, Swift volumes)")
    up.add_argument("--no-ssh", action="store_true", help="create resources and the inventory, log into no host")
    command("down", "delete every resource of the lab (found by tag) and nothing else")
    status = command("status", "show what exists of the lab")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    plan = command("plan", "print the install plan for the current inventory (secrets masked), touching no host")
    plan.add_argument("--json", action="store_true", help="a JSON list of steps per host")
    command("install", "install OpenStack (Keystone, Swift and their prerequisites) on the lab's hosts")
    command("verify", "prove the cloud works: ping, time sync, tokens, a Swift round trip, the volumes")
    ssh = command("ssh", "open a shell on a node, or run a command there: lab ssh NODE [-- COMMAND]")
    ssh.add_argument("node")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER, help="command to run (after --)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lab import commands  # imported late: `lab --help` stays fast

    try:
        return getattr(commands, f"cmd_{args.command}")(args) or 0
    except LabError as exc:
        print(f"lab {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"lab {args.command}: interrupted; run it again to finish from where it stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
