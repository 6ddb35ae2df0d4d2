"""Keystone's uwsgi on Debian 12 answers every request with `Connection: close` (issue 22 item 3).

Debian's keystone-uwsgi.ini (tests/data, from keystone 2:22.0.2-0+deb12u6) serves Keystone on
--http-socket, which closes each connection after its answer without saying so. A client that
keeps the connection of a body-less answer (a 204, a HEAD) and reuses it at once is reset:
Tempest with two workers was, once. The lab's step edits the ini; here the real step's shell
edits a copy, and Debian's own uwsgi serves it on 127.0.0.1 to a client that reuses connections
as urllib3 does.
"""

from __future__ import annotations

import http.client
import select
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from plan_fixtures import actions, plan_for, step_named

from bootstrap.actions import Command
from bootstrap.components.keystone import UWSGI_INI

DEBIAN_INI = Path(__file__).parent / "data" / "keystone-uwsgi.ini"
APP = "def application(env, start):\n    start('204 No Content' if env['REQUEST_METHOD'] in ('DELETE', 'HEAD') " \
      "else '200 OK', [])\n    return [b'' if env['REQUEST_METHOD'] in ('DELETE', 'HEAD') else b'{}']\n"


def _uwsgi_step() -> Command:
    step = step_named(plan_for("debian-12")[1], "keystone-service", "controller")
    return next(c for c in actions(step, Command) if any(UWSGI_INI in line for line in c.run))


def _edited(tmp_path: Path) -> Path:
    """Debian's ini after the lab's step, run for real in sh on a copy."""
    ini = tmp_path / "keystone-uwsgi.ini"
    shutil.copy(DEBIAN_INI, ini)
    step = _uwsgi_step()
    local = [line.replace(UWSGI_INI, str(ini)) for line in (*step.run, step.unless)]
    assert subprocess.run(["sh", "-c", local[-1]]).returncode != 0  # Debian's ini is not yet the lab's
    for command in local[:-1] * 2:  # twice: the second run changes nothing
        subprocess.run(["sh", "-c", command], check=True)
    assert subprocess.run(["sh", "-c", local[-1]]).returncode == 0
    return ini


def test_the_step_leaves_debians_ini_with_4_single_thread_processes_and_connection_close_once(tmp_path):
    lines = _edited(tmp_path).read_text().splitlines()
    assert lines.count("add-header = Connection: close") == 1 and {"processes = 4", "threads = 1"} <= set(lines)
    assert [line for line in DEBIAN_INI.read_text().splitlines() if line not in lines] == ["processes = 8",
                                                                                            "threads = 32"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reused_requests(port: int, rounds: int) -> tuple[int, list[str], set]:
    """DELETE, HEAD and GET in turn on one kept connection, reopened only when urllib3 would."""
    conn, errors, said = None, [], set()
    for number in range(rounds):
        if conn is not None and select.select([conn.sock], [], [], 0)[0]:
            conn.close()
            conn = None
        conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request(("DELETE", "HEAD", "GET")[number % 3], "/v3/x")
            answer = conn.getresponse()
            answer.read()
            said.add(answer.getheader("Connection"))
            if answer.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as error:
            errors.append(type(error).__name__)
            conn.close()
            conn = None
    return rounds, errors, said


@pytest.mark.skipif(not shutil.which("uwsgi"), reason="Debian's uwsgi-core is not installed (make test installs it)")
def test_debians_uwsgi_with_the_labs_ini_says_connection_close_and_no_reused_connection_fails(tmp_path):
    ini, port = _edited(tmp_path), _free_port()
    app = tmp_path / "app.py"
    app.write_text(APP)
    # Debian's ini, less what needs Keystone's own files (its apparmor profile, user, log, app).
    served = [line for line in ini.read_text().splitlines()
              if not line.startswith(("apparmor-profile", "uid", "gid", "logto", "chdir", "wsgi-file", "name",
                                      "paste-logger", "plugins"))]
    ini.write_text("\n".join([*served, "plugins = python3", f"wsgi-file = {app}",
                              f"http-socket = 127.0.0.1:{port}"]) + "\n")
    server = subprocess.Popen(["uwsgi", "--ini", str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        rounds, errors, said = _reused_requests(port, 3000)
    finally:
        server.kill()
        server.wait(timeout=10)
    assert errors == [] and said == {"close"}, (errors[:5], said)
