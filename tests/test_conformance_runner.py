"""`lab verify --tempest`'s run on the controller, against a fake controller and Tempest's real output (issue 22)."""

from __future__ import annotations

import base64
import gzip
import stat
import subprocess
from pathlib import Path

import pytest

from bootstrap.conformance import runner, tempest_host
from labcore.errors import LabError, RemoteError
from labcore.remote import RunResult
from labcore.secrets import Secrets
from fakes import FakeRemote

DATA = Path(__file__).parent / "data" / "tempest"
SECRETS = Secrets({"admin_pass": "admin-secret-123", "demo_pass": "demo-secret-456"})
INFO = '{"swift": {"version": "2.30.0"}, "slo": {}, "tempurl": {}}'


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _controller(progress_lines: list[str], *, start: RunResult = RunResult(0)) -> FakeRemote:
    lines = iter(progress_lines)
    log = gzip.compress(b"POST http://controller:5000/v3/auth/tokens password admin-secret-123\n")
    return (FakeRemote("controller")
            .answer(r"tempest --version", RunResult(0, "tempest 33.0.0\n"))
            .answer(r"controller:8080/info", RunResult(0, INFO))
            .answer(r"tempest init|cat > .*tempest.conf", RunResult(0))
            .answer(r"systemd-run --unit=lab-tempest", start)
            .answer(r"^rc=\$\(cat ", lambda command, stdin: RunResult(0, next(lines)))
            .answer(r"stestr last --subunit", RunResult(0, base64.b64encode((DATA / "class-skips.subunit").read_bytes()).decode()))
            .answer(r"gzip -c", RunResult(0, base64.b64encode(log).decode()))
            .answer(r"systemctl stop lab-tempest", RunResult(0)))


def test_a_run_installs_configures_runs_and_copies_back_what_tempest_found(tmp_path):
    clock, said = Clock(), []
    controller = _controller(["- 0 0\n", "- 2 1\n", "1 3 1\n"])
    found = runner.run_tempest(controller, "debian-12", "rocky", SECRETS, tmp_path, progress=said.append,
                               clock=clock, sleep=clock.sleep)
    assert found.api.line() == f"{runner.API_SET_NAME}: 0 passed, 1 failed, 2 skipped"
    assert found.guideline.total == 58 and not found.ok
    assert said[-1] == "tempest: finished, 3 tests in 2.0 min (1 failed)"
    assert "tempest: 2 tests done (1 failed) after 1 min" in said
    assert found.subunit.read_bytes() == (DATA / "class-skips.subunit").read_bytes()
    assert stat.S_IMODE(found.subunit.stat().st_mode) == 0o600
    assert "admin-secret-123" not in found.log.read_text() and "********" in found.log.read_text()
    conf = next(s for c, s in zip(controller.commands, controller.stdins) if "tempest.conf" in c)
    assert "admin_password = admin-secret-123" in conf and "discoverable_apis = slo,tempurl" in conf


def test_the_password_goes_on_stdin_never_in_a_command(tmp_path):
    clock = Clock()
    controller = _controller(["1 3 1\n"])
    runner.run_tempest(controller, "debian-12", "rocky", SECRETS, tmp_path, progress=lambda line: None,
                       clock=clock, sleep=clock.sleep)
    assert not [c for c in controller.commands if "admin-secret-123" in c]


def test_a_run_already_going_on_is_one_line_saying_how_to_stop_it(tmp_path):
    clock = Clock()
    controller = _controller([], start=RunResult(3, "", "a Tempest run is still going on"))
    with pytest.raises(RemoteError, match=r"controller: a Tempest run is still going on there: .*systemctl stop lab-tempest"):
        runner.run_tempest(controller, "debian-12", "rocky", SECRETS, tmp_path, progress=lambda line: None,
                           clock=clock, sleep=clock.sleep)


def test_a_run_over_its_time_is_stopped_and_named(tmp_path):
    clock = Clock()
    controller = _controller(["- 5 0\n"] * 10)
    with pytest.raises(RemoteError, match=r"Tempest ran over 2 min \(5 tests done\): stopped"):
        runner.run_tempest(controller, "debian-12", "rocky", SECRETS, tmp_path, progress=lambda line: None,
                           timeout_seconds=120, clock=clock, sleep=clock.sleep)
    assert controller.ran(r"systemctl stop lab-tempest")


def test_an_install_failure_is_one_line_with_secrets_masked(tmp_path):
    controller = FakeRemote("controller").answer(r"tempest --version", RunResult(100, "", "E: Unable to locate package tempest admin-secret-123"))
    with pytest.raises(RemoteError, match=r"controller: could not install Tempest: E: Unable to locate package tempest \*\*\*\*\*\*\*\*"):
        runner.run_tempest(controller, "debian-12", "rocky", SECRETS, tmp_path, progress=lambda line: None)


def test_a_release_without_a_guideline_sends_nothing(tmp_path):
    controller = FakeRemote("controller")
    with pytest.raises(LabError, match="no interop guideline"):
        runner.run_tempest(controller, "debian-12", "zed", SECRETS, tmp_path, progress=lambda line: None)
    assert controller.commands == []


def test_the_progress_command_counts_tempests_own_output(tmp_path):
    """The shell runs for real in bash, on what `tempest run` printed (3 tests: 1 failed, 2 skipped)."""
    host = tempest_host.TempestHost("debian-12", workspace=str(tmp_path))
    (tmp_path / tempest_host.RUN_LOG).write_bytes((DATA / "run-class-skips.log").read_bytes())
    running = subprocess.run(["bash", "-c", tempest_host.progress_command(host)], capture_output=True, text=True)
    assert tempest_host.parse_progress(running.stdout) == (None, 3, 1)
    (tmp_path / tempest_host.RUN_RC).write_text("1\n")
    ended = subprocess.run(["bash", "-c", tempest_host.progress_command(host)], capture_output=True, text=True)
    assert tempest_host.parse_progress(ended.stdout) == (1, 3, 1)


def test_progress_before_the_log_exists_is_zero(tmp_path):
    host = tempest_host.TempestHost("debian-12", workspace=str(tmp_path / "none"))
    running = subprocess.run(["bash", "-c", tempest_host.progress_command(host)], capture_output=True, text=True)
    assert tempest_host.parse_progress(running.stdout) == (None, 0, 0)


@pytest.mark.parametrize("profile,tempest", [("debian-12", "tempest run"), ("ubuntu-18.04", f"{tempest_host.VENV}/bin/tempest run")])
def test_the_run_is_a_transient_unit_of_the_profiles_tempest_over_the_api_set(profile, tempest):
    command = tempest_host.start_command(tempest_host.TempestHost(profile), 4)
    assert "systemd-run --unit=lab-tempest --collect" in command
    assert tempest in command and "--concurrency 4" in command and "--regex" in command


def test_bionic_gets_tempest_23_with_trains_constraints_less_tempests_own_pin():
    command = tempest_host.install_command(tempest_host.TempestHost("ubuntu-18.04"))
    assert "tempest==23.0.0" in command and tempest_host.TRAIN_CONSTRAINTS in command
    assert "grep -v '^tempest==='" in command and "'pip<22'" in command
