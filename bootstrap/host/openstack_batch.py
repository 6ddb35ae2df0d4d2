"""The guide's `openstack` commands, run in ONE process, each only when it is needed.

    python openstack_batch.py [--check]  < commands.json

stdin: a JSON list of {"argv": [...], "unless": SQL or null, "set_if": SQL or null,
"set_argv": [...] or null}; argv is a command as the guide types it, without the word
`openstack`. For each entry, in order: when `unless` counts a non-zero number in
Keystone's database (`mysql -N -B keystone -e SQL`, root over the local socket), the
entity exists and nothing runs; when `set_if` counts non-zero, set_argv runs instead of
argv (e.g. `user set --password` for an existing user). A query that fails proves
nothing: the command runs, and fails with the client's own message if it must.

Why: every `openstack` call spends 2-5 s starting Python, loading plugins and asking for a
token before a 0.1 s API call, and the identity chapter makes a dozen. Here the first
command goes through the client's whole start (options from the environment, as
admin-openrc sets them, and a token), the others reuse that session as the client's
interactive mode does; a 0.1 s query decides each one, so a re-run sends nothing.

--check runs no openstack command: it prints each command that would run (passwords as
********) and exits 3 if any would, 0 if none. Otherwise exit 0 when all ran, or 1 at the
first failure with `openstack WORD WORD ...: exit N` on stderr; 2 for bad input.
"""
from __future__ import print_function

import json
import subprocess
import sys

try:
    from shlex import quote
except ImportError:  # python 2.7
    from pipes import quote

MASK = "********"
KEYS = ("argv", "unless", "set_if", "set_argv")
STRING = (type(u""), str)  # unicode and str on python 2, str twice on python 3


def native(text):
    """JSON gives unicode on python 2; the client's argparse wants native strings."""
    if sys.version_info[0] == 2 and isinstance(text, unicode):  # noqa: F821 (python 2 only)
        return text.encode("utf-8")
    return text


def read_entries(stream):
    """The entries on stdin, checked; ValueError names what is wrong."""
    try:
        entries = json.load(stream)
    except ValueError as error:
        raise ValueError("stdin is not JSON (%s)" % error)
    if not isinstance(entries, list):
        raise ValueError("stdin: expected a JSON list of commands")
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("argv"), list) or not entry["argv"]:
            raise ValueError('stdin: entry %d: expected {"argv": [words...], ...}' % number)
        unknown = sorted(set(entry) - set(KEYS))
        if unknown:
            raise ValueError("stdin: entry %d: unknown key %s" % (number, unknown[0]))
        if entry.get("set_if") and not isinstance(entry.get("set_argv"), list):
            raise ValueError("stdin: entry %d: set_if needs set_argv, a list of words" % number)
        words = entry["argv"] + (entry.get("set_argv") or [])
        if not all(isinstance(word, STRING) for word in words):
            raise ValueError("stdin: entry %d: every word of argv and set_argv must be a string" % number)
        for key in ("unless", "set_if"):
            if entry.get(key) is not None and not isinstance(entry[key], STRING):
                raise ValueError("stdin: entry %d: %s must be an SQL query (a string) or null" % (number, key))
    return entries


def counted(sql):
    """True when the query answers a non-zero first number; False when zero, or when it fails."""
    if not sql:
        return False
    try:
        process = subprocess.Popen(["mysql", "-N", "-B", "keystone", "-e", native(sql)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, _ = process.communicate()
    except OSError:  # no mysql on this host
        return False
    words = out.decode("utf-8", "replace").split()
    if process.returncode != 0 or not words:
        return False
    try:
        return float(words[0]) != 0
    except ValueError:
        return False


def wanted(entry):
    """The argv to run for this entry, or None when the entity already exists."""
    if counted(entry.get("unless")):
        return None
    if counted(entry.get("set_if")):
        return entry["set_argv"]
    return entry["argv"]


def masked(argv):
    """The command as a user would type it, with every password value hidden."""
    words = []
    hide = False
    for word in [native(word) for word in argv]:
        if hide:
            words.append(MASK)
        elif word.startswith("--password="):
            words.append("--password=" + MASK)
        else:
            words.append(quote(word))
        hide = word == "--password"
    return " ".join(["openstack"] + words)


def check(entries):
    would = [argv for argv in (wanted(entry) for entry in entries) if argv is not None]
    for argv in would:
        print(masked(argv))
    return 3 if would else 0


def start_client():
    """Imported only when a command must run: --check and a re-run that needs nothing stay fast."""
    from openstackclient.shell import OpenStackShell
    return OpenStackShell()


def run(entries):
    shell = None
    for entry in entries:
        argv = wanted(entry)
        if argv is None:
            continue
        argv = [native(word) for word in argv]
        head = "%s ..." % masked(argv[:2])
        try:
            if shell is None:
                shell = start_client()
                code = shell.run(argv)
            else:
                code = shell.run_subcommand(argv)
        except ImportError as error:
            print("%s: the openstack client is not installed for %s (%s)" % (head, sys.executable, error),
                  file=sys.stderr)
            return 1
        except SystemExit as stop:  # argparse stops on a bad option
            code = stop.code if isinstance(stop.code, int) else 1
        except Exception as error:  # the client's own bug: one line, no traceback
            print("%s: %s: %s" % (head, type(error).__name__, error), file=sys.stderr)
            return 1
        if code:
            print("%s: exit %s" % (head, code), file=sys.stderr)
            return 1
    return 0


def main(args):
    if args not in ([], ["--check"]):
        print("usage: openstack_batch.py [--check] < commands.json", file=sys.stderr)
        return 2
    try:
        entries = read_entries(sys.stdin)
    except ValueError as error:
        print("openstack_batch.py: %s" % error, file=sys.stderr)
        return 2
    return check(entries) if args else run(entries)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
