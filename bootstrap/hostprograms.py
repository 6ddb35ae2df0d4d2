"""The lab's programs that run on the hosts (bootstrap/host/*.py), and how the plan calls them.

They are real files shipped as package data (never strings built here), copied to every
host by the first step of the plan and run there with the interpreter the profile names
(the Rocky client is Python 2 on Ubuntu 18.04). Their input and output are the contract
in each program's docstring; the lab reads what they print as facts.
"""

from __future__ import annotations

import shlex
from functools import lru_cache
from importlib import resources

from bootstrap.actions import FileSpec
from labcore.errors import LabError

HOST_DIR = "/usr/local/lib/openstack-ec2-lab"
PROGRAMS = ("first_boot.py", "wait_http.py", "openstack_batch.py", "ring_facts.py", "cloud_ready.py",
            "apt_pocket.py", "cloud_load.py")


def path(program: str) -> str:
    return f"{HOST_DIR}/{program}"


@lru_cache(maxsize=None)
def source(program: str) -> str:
    try:
        return resources.files("bootstrap.host").joinpath(program).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        raise LabError(f"bootstrap/host/{program} is missing from this installation of the lab: "
                       f"reinstall it (make venv) from a complete checkout") from None


def files() -> tuple[FileSpec, ...]:
    """Every program as a file for the hosts: root's, executable, readable by all."""
    return tuple(FileSpec(path(p), source(p), mode=0o755) for p in PROGRAMS)


def call(python: str, program: str, *args: str) -> str:
    return " ".join([shlex.quote(python), shlex.quote(path(program)), *(shlex.quote(a) for a in args)])


def argv(python: str, program: str, *args: str) -> tuple[str, ...]:
    return (python, path(program), *args)
