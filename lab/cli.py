"""`lab` / `python -m lab`: parse arguments, run one command, map every outcome to an exit code.

Thin on purpose: the work lives in lab/commands/. Exit codes: 0 done; 1 a failure on the
cloud or a host (the line says what to do next); 2 bad input (nothing was created or
deleted); 130 interrupted (Ctrl-C). A LabError is printed as one line; anything else
unexpected is one line too, with the path of a log file holding the traceback. No
traceback ever reaches the terminal.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from datetime import datetime, timezone

from lab.target import TARGETS
from labcore.errors import LabError

# command -> "module:function" under lab.commands, imported late: `lab --help` stays fast.
COMMANDS = {
    "up": "up:run", "down": "down:run", "status": "status:run", "plan": "install:plan",
    "install": "install:install", "verify": "install:verify", "ssh": "ssh:run", "reboot": "reboot:run",
    "list": "labs:list_labs", "extend": "extend:run",
    "run": "ops:run_command", "copy": "ops:copy", "logs": "ops:logs",
    "openrc": "access:openrc", "open": "access:open_dashboard",
}


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parser.add_argument("-c", "--config", default=default(os.environ.get("CONFIG", "configs/lab.yaml")),
                        help="lab description (default: configs/lab.yaml, or $CONFIG)")
    parser.add_argument("--target", choices=TARGETS, default=default(os.environ.get("TARGET", "sim")),
                        help="aws = real EC2 (spends money); sim = the local twin of EC2 (default, or $TARGET)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lab", description="Build an OpenStack Rocky test lab on EC2 or its local twin.",
                                     epilog="exit codes: 0 done, 1 failure on the cloud or a host (the message says "
                                            "what to do next), 2 bad input (nothing changed), 3 `lab install --check`: "
                                            "something would change, 130 interrupted")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p, top=False)
        return p

    up = command("up", "create the lab's cloud resources and prepare the hosts (hostnames, /etc/hosts, Swift volumes)")
    up.add_argument("--no-ssh", action="store_true", help="create resources and the inventory, log into no host")
    up.add_argument("--dry-run", action="store_true", help="say what the lab costs and would make; call nothing")
    down = command("down", "delete every resource of the lab (found by tag) and nothing else")
    down.add_argument("--expired", action="store_true",
                      help="instead: remove every expired lab of the region (found by its tags), and nothing else")
    extend = command("extend", "the lab now expires DURATION from now (45m, 8h, 2d; never), on its tags and hosts")
    extend.add_argument("duration")
    extend.add_argument("--no-ssh", action="store_true", help="move the tags only; the hosts' timers at the next up")
    labs = command("list", "every lab in the region, found by its tags: nodes, age, expiry, price, state")
    labs.add_argument("--json", action="store_true", help="machine-readable output")
    status = command("status", "show what exists of the lab")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    plan = command("plan", "print the install plan for the current inventory (secrets masked), touching no host")
    plan_output = plan.add_mutually_exclusive_group()
    plan_output.add_argument("--json", action="store_true", help="a JSON list of steps per host")
    plan_output.add_argument("--shell", action="store_true", help="the raw shell each step asks and sends")
    install = command("install", "install OpenStack (Keystone, Swift and their prerequisites; Swift alone with "
                                 "auth: tempauth) on the lab's hosts")
    install.add_argument("--check", action="store_true",
                         help="change nothing: read the hosts' facts and show what would change, with a diff of "
                              "every file; exit 0 when nothing would change, 3 when something would (like "
                              "`terraform plan -detailed-exitcode`), 1 when a host could not be read")
    verify = command("verify", "prove the cloud works: ping, time sync, tokens (TempAuth's /auth/v1.0 in a Swift-only "
                               "lab), a Swift round trip, the volumes")
    verify.add_argument("--tempest", action="store_true",
                        help="then run OpenStack's own tests on the controller: Tempest's identity v3 and object "
                             "storage API tests and the 'OpenStack Powered Storage' guideline's required tests "
                             "(several minutes; results in .lab/<name>/tempest/ and the report)")
    verify.add_argument("--concurrency", metavar="N", default="4", help="Tempest workers at once (1-16, default 4)")
    reboot = command("reboot", "reboot nodes through the EC2 API (all of them by default) and wait until they are back")
    reboot.add_argument("nodes", nargs="*", metavar="NODE")
    ssh = command("ssh", "open a shell on a node, or run a command there: lab ssh NODE [-- COMMAND]")
    ssh.add_argument("node")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER, help="command to run (after --)")
    run = command("run", "run a command as root on many nodes at once (all by default): "
                         "lab run [--role ROLE] [NODE...] -- COMMAND; a table of exit codes and last lines")
    run.add_argument("--role", help="the nodes of this role too: controller or object")
    run.add_argument("--timeout", metavar="SECONDS", help="stop the command on a node after this long (default 300)")
    run.add_argument("--lines", metavar="N", help="last lines of output shown per node (default 5)")
    run.add_argument("words", nargs=argparse.REMAINDER, metavar="[NODE...] -- COMMAND")
    copy = command("copy", "copy one file to or from a node, or between two nodes, as root: lab copy SRC NODE:DST, "
                           "lab copy NODE:SRC DST, lab copy NODE:SRC NODE:DST")
    copy.add_argument("source", metavar="SRC")
    copy.add_argument("destination", metavar="DST")
    copy.add_argument("--mode", help="octal mode of the copy (default: the file's own on the way in and between "
                                     "nodes, 0600 out)")
    copy.add_argument("--force", action="store_true", help="overwrite an existing local file")
    logs = command("logs", "every host's service logs (journal and /var/log), secrets masked, in one archive "
                           "under .lab/<name>/")
    logs.add_argument("--lines", metavar="N", help="journal lines per unit (default 5000)")
    openrc = command("openrc", "print the lab's credentials for this machine, for eval \"$(lab openrc demo)\" "
                               "(the password masked on a terminal)")
    openrc.add_argument("user", nargs="?", choices=("admin", "demo"), default="demo", help="default: demo")
    command("open", "print the dashboard's URL and login, and open it in this machine's browser if it has one")
    return parser


def _crash_log(command: str) -> str:
    """Write the traceback of the exception being handled to a 0600 file; its path."""
    from labcore.paths import state_root, write_private

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = state_root() / "crash" / f"{stamp}-{command}-{os.getpid()}.log"
    try:
        write_private(path, f"lab {command} ({' '.join(sys.argv)})\n{traceback.format_exc()}")
    except OSError:
        return "(no log: the .lab folder is not writable)"
    return str(path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, _, function = COMMANDS[args.command].partition(":")
    try:
        run = getattr(importlib.import_module(f"lab.commands.{module}"), function)
        return run(args) or 0
    except LabError as exc:
        print(f"lab {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"lab {args.command}: interrupted; run it again to finish from where it stopped", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one guard: a bug is one line and a log, never a traceback
        where = _crash_log(args.command)
        print(f"lab {args.command}: unexpected error {type(exc).__name__}: {str(exc)[:200]}; nothing more was "
              f"done; the traceback is in {where} (please report it), then run the command again", file=sys.stderr)
        return 1
    finally:
        from lab.lock import release_all

        release_all()  # the lab's lock ends with the command, not when its objects happen to be freed


if __name__ == "__main__":
    sys.exit(main())
