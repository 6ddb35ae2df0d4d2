"""Every command the lab sends to an Ubuntu 18.04 host, held against the tools bionic ships.

tests/data/bionic_tools.json lists bionic's versions (systemd 237, apt 1.6, util-linux 2.31,
xfsprogs 4.9, OpenSSH 7.6, Python 2.7/3.6) and, per option or verb, the first version that
has it, with its source. An option the lab starts to send that is newer than bionic (as
`systemctl is-system-running --wait`, systemd 240, once was) or that the table does not know
fails here, before a host does. The host programs are held to Python 2.7 and 3.6 by running
them there (tests/interpreters.py)."""

from __future__ import annotations

import json
import re
import shlex
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fakes import FakeRemote
from interpreters import DATA, EVERY
from plan_fixtures import inventory, rendered

from bootstrap.hostprograms import PROGRAMS
from bootstrap.planner import build_plan
from bootstrap.profiles import UBUNTU_1804_ROCKY
from bootstrap.verify import verify_checks
from lab import logbundle, reboot, storage, userdata
from labcore.remote import RunResult
from labcore.secrets import generate

TABLE = json.loads((DATA / "bionic_tools.json").read_text())
TOOLS = TABLE["commands"]
# Ring placement reader, shipped by the rings step rather than with PROGRAMS (swift_rings.py).
ALSO_SHIPPED = {"ring_parts.py"}


def version(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text))


def bionic(tool: str) -> tuple[int, ...]:
    return version(TABLE["bionic"][TOOLS[tool]["package"]]["version"])


def invocations(text: str, tool: str) -> list[list[str]]:
    """The words after each use of tool as a command in text, up to the end of that command."""
    found = []
    for match in re.finditer(rf"(?<![\w/.$-]){re.escape(tool)}(?=[ \t]|$)", text):
        if re.search(r"command -v +$", text[:match.start()]):  # asked whether it exists, not run
            continue
        segment = re.match(r"[^;&|)\n`]*", text[match.end():]).group(0)
        try:
            found.append(shlex.split(segment))
        except ValueError:  # cut inside a quoted word: the words as they stand
            found.append(segment.split())
    return found


def features(tool: str, words: list[str]) -> list[str]:
    """The table's keys one invocation needs: its verb, and each option (as `VERB OPTION` when
    the table has that pair, e.g. `is-system-running --wait`); `-o KEY` for apt's -o."""
    spec = TOOLS[tool]
    if spec.get("host_programs"):
        return [Path(words[0]).name] if words else []
    verb, needed, i = None, [], 0
    while i < len(words):
        word = words[i]
        if word == "--" or re.match(r"\d*[<>]", word):  # the command it runs, or a redirection: not its own
            needed += ["--"] if word == "--" else []
            break
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0]
            if name in spec["options_with_value"] and "=" not in word and i + 1 < len(words):
                if spec.get("keyed_o") and name == "-o":  # apt's -o KEY=VALUE: the key is the feature
                    name = f"-o {words[i + 1].split('=', 1)[0]}"
                i += 1
            needed.append(f"{verb} {name}" if verb and f"{verb} {name}" in spec["features"] else name)
        elif spec["verbs"] and verb is None:
            verb = word
            needed.append(word)
        i += 1
    return needed


def too_new(tool: str, texts: list[str]) -> list[str]:
    """Each feature of tool used in texts that bionic lacks or the table does not know, in words."""
    problems = []
    for text in texts:
        for words in invocations(text, tool):
            for feature in features(tool, words):
                if TOOLS[tool].get("host_programs"):
                    if feature not in (*PROGRAMS, *ALSO_SHIPPED):
                        problems.append(f"{tool} runs {feature}, not one of the lab's host programs")
                    continue
                known = TOOLS[tool]["features"].get(feature)
                if known is None:
                    problems.append(f"{tool} {feature}: not in tests/data/bionic_tools.json (add it with its source)")
                elif version(known["since"]) > bionic(tool):
                    problems.append(f"{tool} {feature}: needs {TOOLS[tool]['package']} {known['since']}, bionic has "
                                    f"{TABLE['bionic'][TOOLS[tool]['package']]['version']} ({known['source']})")
    return problems


def storage_commands() -> list[str]:
    """What `lab up` sends to prepare a blank volume (lab/storage.py)."""
    remote = FakeRemote("object1", otherwise=RunResult(0, ""))
    remote.answer(r"readlink -f", RunResult(0, "/dev/nvme1n1\n"))
    remote.answer(r"^blkid -p -o export", RunResult(2, ""))
    remote.answer(r"^blkid -p -s UUID", RunResult(0, "0b6a4e2c-0000-4000-8000-000000000001\n"))
    node = inventory("ubuntu-18.04").nodes[1]
    storage.prepare_storage(remote, node.volumes)
    return remote.commands


def sent_to_bionic() -> list[str]:
    """The ubuntu-18.04 plan's facts and commands (with an expiry), and what lab up, lab
    reboot, lab verify and lab logs send to its hosts."""
    inv = inventory("ubuntu-18.04").model_copy(update={"expires_at": "2030-01-01T00:00:00Z"})
    plan = build_plan(inv, generate())
    texts = [text for step in plan.steps for text in rendered(step)]
    texts += [check.command for check in verify_checks(inv)]
    texts += [reboot.MARKER_COMMAND, reboot.SETTLED_COMMAND]
    texts += [logbundle.discover_command(logbundle.candidate_units(UBUNTU_1804_ROCKY)),
              logbundle.journal_command("mariadb", 50)]
    # the launch's user data: cloud-init runs its bootcmd in /bin/sh at every boot
    texts.append(userdata.expiry_script(datetime(2030, 1, 1, tzinfo=timezone.utc)))
    return texts + storage_commands()


@pytest.fixture(scope="module")
def sent() -> list[str]:
    return sent_to_bionic()


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_every_command_sent_to_ubuntu_18_04_uses_what_bionic_has(sent, tool):
    assert too_new(tool, sent) == []


def test_the_commands_held_include_each_tool_the_lab_really_uses(sent):
    """The check reads real commands: each of these tools is found in what the lab sends."""
    used = {tool for tool in TOOLS if any(invocations(text, tool) for text in sent)}
    assert {"systemctl", "systemd-run", "journalctl", "hostnamectl", "apt-get", "add-apt-repository", "dpkg-query", "findmnt",
            "blkid", "mountpoint", "runuser", "mkfs.xfs", "python", "python3"} <= used


@pytest.mark.parametrize("command, problem", [
    ("systemctl is-system-running --wait 2>/dev/null || true", "systemctl is-system-running --wait: needs systemd 240"),
    ("apt-get -o DPkg::Lock::Timeout=300 update", "apt-get -o DPkg::Lock::Timeout: needs apt 1.9.11"),
    ("ssh-keygen -Y sign -f key file", "ssh-keygen -Y: needs openssh 8.1"),
    ("systemctl --frobnicate restart x", "systemctl --frobnicate: not in tests/data/bionic_tools.json"),
    ("python3 /usr/local/lib/openstack-ec2-lab/new_tool.py", "python3 runs new_tool.py, not one of the lab's"),
])
def test_an_option_newer_than_bionic_fails_naming_what_it_needs(command, problem):
    tool = command.split()[0]
    found = too_new(tool, [command])
    assert len(found) == 1 and found[0].startswith(problem), found


@pytest.mark.parametrize("command", ["systemctl enable --now chrony", "findmnt --verify",
                                     "systemd-run --on-calendar=2030-01-01 /bin/true", "mkfs.xfs -q -f /dev/x",
                                     "systemctl show -p Id --value mariadb"])
def test_what_bionic_has_passes(command):
    assert too_new(command.split()[0], [command]) == []


def test_the_table_names_a_source_for_every_version_and_feature():
    for name, package in TABLE["bionic"].items():
        assert version(package["version"]) and package["source"].startswith("https://"), name
    for tool, spec in TOOLS.items():
        assert spec["package"] in TABLE["bionic"], tool
        for feature, known in spec["features"].items():
            assert version(known["since"]) is not None and known["source"], (tool, feature)


def test_the_host_programs_run_on_the_pythons_bionic_ships():
    """python is 2.7 (the Rocky client's) and python3 is 3.6 on bionic: the host programs' tests run on both."""
    assert {TABLE["bionic"]["python2"]["version"], TABLE["bionic"]["python3"]["version"]} <= set(EVERY)
