"""`lab verify --tempest` from the command line (issue 22): bad input in one line before any host,
Tempest only after the lab's own checks pass, its table printed and the report's conformance section.
No host is reached: verify's checks are given and the controller is a FakeRemote."""

from __future__ import annotations

import pytest
from test_conformance_runner import Clock, _controller
from test_report_cli import lab, run  # noqa: F401 - lab is a fixture

from bootstrap.verify import CheckResult
from labcore.inventory import load_inventory, save_inventory


def _checks(passed: bool):
    return lambda checks, factory, secrets: [CheckResult("swift stat (demo)", "controller", passed, "Account: AUTH_x")]


def _tempest_controller(monkeypatch):
    clock = Clock()
    controller = _controller(["1 3 1\n"])
    monkeypatch.setattr("lab.ssh.FabricRemote", lambda node, inventory: controller)
    monkeypatch.setattr("bootstrap.conformance.runner.time.monotonic", clock)
    monkeypatch.setattr("bootstrap.conformance.runner.time.sleep", clock.sleep)
    return controller


def test_tempest_runs_after_the_checks_pass_and_fills_the_reports_conformance_section(lab, capsys, monkeypatch):
    monkeypatch.setattr("bootstrap.verify.run_checks", _checks(True))
    controller = _tempest_controller(monkeypatch)

    code, out, _ = run(lab, capsys, "verify", "--tempest", "--concurrency", "2")

    assert code == 1  # the fixture stream has a failure
    assert controller.ran(r"--concurrency 2")
    text = "\n".join(out)
    assert "OpenStack Powered Storage 2019.11: 0 passed, 57 failed, 1 skipped (1 not listed as deliberate)" in text
    assert (lab["paths"].root / "tempest" / "results.subunit").exists()
    page = lab["page"].read_text()
    assert 'id="conformance"' in page and "OpenStack Powered Storage 2019.11" in page


def test_tempest_is_not_run_when_the_labs_own_checks_fail(lab, capsys, monkeypatch):
    monkeypatch.setattr("bootstrap.verify.run_checks", _checks(False))
    monkeypatch.setattr("lab.ssh.FabricRemote", lambda node, inventory: pytest.fail("Tempest must not start"))

    code, out, _ = run(lab, capsys, "verify", "--tempest")

    assert code == 1 and "Tempest was not run" in "\n".join(out)


@pytest.mark.parametrize("value", ["0", "17", "four", "-1"])
def test_a_bad_concurrency_is_one_line_exit_2_before_any_host(lab, capsys, monkeypatch, value):
    monkeypatch.setattr("bootstrap.verify.run_checks", lambda *a: pytest.fail("no check may run"))
    code, out, err = run(lab, capsys, "verify", "--tempest", "--concurrency", value)
    assert code == 2 and "--concurrency: a number of Tempest workers from 1 to 16" in err
    assert len(err.strip().splitlines()) == 1


def test_a_swift_only_lab_is_told_tempest_needs_keystone(lab, capsys, monkeypatch):
    path = lab["paths"].inventory
    save_inventory(load_inventory(path).model_copy(update={"auth": "tempauth"}), path)
    with open(lab["config"], "a") as config:
        config.write("auth: tempauth\n")
    monkeypatch.setattr("bootstrap.verify.run_checks", lambda *a: pytest.fail("no check may run"))
    code, _, err = run(lab, capsys, "verify", "--tempest")
    assert code == 2 and "needs Keystone, and this lab is Swift only" in err
