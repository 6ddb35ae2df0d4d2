"""README.md tells the truth: its ports table is lab/ports.py's list, its commands are the CLI's."""

from __future__ import annotations

import re
from pathlib import Path

from lab.cli import COMMANDS, build_parser
from lab.ports import SERVICE_PORTS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_ports_table_is_the_security_groups_list():
    table = README.split("| service | port | listens on |")[1].split("\n\n")[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.strip().splitlines()[1:]]
    shown = [(service, port.split()[0], role) for service, port, role in rows]
    wanted = [(p.service, p.label, "controller" if p.role == "controller" else "object nodes") for p in SERVICE_PORTS]
    assert shown == wanted


def test_every_command_the_readme_names_exists_and_every_command_is_named():
    named = set(re.findall(r"`lab ([a-z]+)", README.split("## Commands")[1].split("## Config format")[0]))
    assert named == set(COMMANDS)
    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert set(subcommands) == set(COMMANDS)
