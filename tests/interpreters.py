"""The interpreters the lab's profiles send host programs to, and a way to run a program on one.

bootstrap/host/*.py run on the hosts' own Python: 2.7 and 3.6 on Ubuntu 18.04 (the Rocky
client is Python 2 there), 3.11 on Debian 12. This machine image has those under pyenv
(~/.pyenv/versions/2.7.18, 3.6.15, 3.11.7, or $PYENV_ROOT). Locally a missing one skips
the test with the reason; in CI (CI=true) it FAILS it: CI must run these tests.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

HOST_PROGRAMS = Path(__file__).resolve().parent.parent / "bootstrap" / "host"
DATA = Path(__file__).resolve().parent / "data"
VERSIONS = {"2.7": "2.7.18", "3.6": "3.6.15", "3.11": "3.11.7"}
EVERY = ("2.7", "3.6", "3.11")


def pyenv_versions() -> Path:
    return Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def interpreter(version: str) -> Path:
    """bin/python of this version; skips the test (fails it in CI) when it is not installed."""
    python = pyenv_versions() / VERSIONS[version] / "bin" / "python"
    if not os.access(python, os.X_OK):
        reason = f"python {VERSIONS[version]} is not installed at {python}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI must run the host programs on every interpreter a profile uses")
        pytest.skip(reason)
    return python


def on(*versions: str):
    """Parametrize a test over interpreters: it takes `version` and passes it to run()."""
    return pytest.mark.parametrize("version", versions or EVERY, ids=[f"py{v}" for v in versions or EVERY])


def run(version: str, program: str, *args: str, stdin: str | None = None, env: dict | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    """Run bootstrap/host/<program> on that interpreter, as the plan does on a host."""
    environment = {**os.environ, **(env or {})}
    environment.pop("PYTHONHOME", None)
    command = [str(interpreter(version)), str(HOST_PROGRAMS / program), *args]
    return subprocess.run(command, check=False, input=stdin, capture_output=True, text=True, env=environment,
                          timeout=timeout)
