"""The host programs stand alone: standard library only (the batch also imports the host's
openstackclient), nothing of this project, and a docstring saying what each reads and prints."""

from __future__ import annotations

import ast
import sys

import pytest
from interpreters import HOST_PROGRAMS

PROGRAMS = ("openstack_batch.py", "ring_facts.py", "wait_http.py", "first_boot.py", "cloud_ready.py",
            "ring_parts.py", "apt_pocket.py", "cloud_load.py")
PYTHON2_STDLIB = {"urllib2", "httplib", "pipes", "urlparse"}  # imported only where python 3's names are missing
# cloud_load.py uses cloud_ready.py, its neighbour in the same folder on every host.
ALSO_ALLOWED = {"openstack_batch.py": {"openstackclient"}, "cloud_load.py": {"cloud_ready"}}


def imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_host_folder_holds_exactly_the_eight_programs():
    assert sorted(p.name for p in HOST_PROGRAMS.glob("*.py")) == sorted((*PROGRAMS, "__init__.py"))


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_host_program_imports_only_the_standard_library(program):
    tree = ast.parse((HOST_PROGRAMS / program).read_text())
    foreign = imported(tree) - set(sys.stdlib_module_names) - PYTHON2_STDLIB - {"__future__"}
    assert foreign <= ALSO_ALLOWED.get(program, set()), f"{program} imports {sorted(foreign)}"
    docstring = ast.get_docstring(tree) or ""
    assert f"{program} " in docstring, "the docstring shows how it is run"
    assert "Why" in docstring, "the docstring says why the program exists"
