"""`lab install` and `lab verify` write .lab/<name>/report.html (0600) and print its path last:
a real run of the runner on converged hosts, a failed run with its failure, and a verify that
adds its table beside the last install's timeline. No host is reached: the runner's sessions
are FakeHosts and verify's checks are given.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from fakes import HostFleet
from plan_fixtures import IPS, converged, inventory
from test_report_page import parse, synthetic_checks, synthetic_run

from lab import cli
from lab.keypair import generate_key
from lab.target import Target
from labcore.inventory import save_inventory
from labcore.paths import LabPaths
from labcore.remote import RunResult
from labcore.secrets import ensure_secrets

CONFIG = (Path(__file__).resolve().parent.parent / "configs" / "lab.yaml").read_text()


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A lab that is up here (config, inventory, secrets, key); no EC2 client and no SSH connection."""
    config = tmp_path / "lab.yaml"
    config.write_text(CONFIG)
    paths = LabPaths.for_lab("rocky-lab")
    save_inventory(inventory().model_copy(update={"key_file": str(paths.key_file)}), paths.inventory)
    ensure_secrets(paths, lambda line: None, hosts_exist=lambda: False)
    generate_key(paths.key_file)
    monkeypatch.setattr(Target, "ec2_client", lambda self, region: pytest.fail("no EC2 call in these tests"))
    monkeypatch.setattr("lab.ssh.fabric_factory", lambda inv: None)
    return {"config": str(config), "paths": paths, "page": paths.root / "report.html"}


def _converged_run(monkeypatch):
    """`lab install`'s run_plan runs the real runner, on hosts where everything is already done."""
    from bootstrap import runner

    def run_plan(plan, inv, factory, secrets, **options):
        fleet = HostFleet({name: converged(plan, name) for name in IPS})
        for host in fleet.hosts.values():
            host.answer(r"^systemctl (restart|enable|daemon-reload)\b", RunResult(0))
            host.answer(r"cloud_ready\.py", RunResult(0, "ok proxy\nok token\nok object-put\n"))
        return runner.execute(plan, inv, fleet, secrets, **options)

    monkeypatch.setattr(runner, "run_plan", run_plan)


def run(lab, capsys, *argv: str) -> tuple[int, list[str], str]:
    code = cli.main(["--config", lab["config"], "--target", "aws", *argv])
    captured = capsys.readouterr()
    return code, captured.out.strip().splitlines(), captured.err


def test_lab_install_writes_the_report_and_prints_its_path_last(lab, capsys, monkeypatch):
    _converged_run(monkeypatch)

    code, out, err = run(lab, capsys, "install")

    assert code == 0, err
    assert out[-1] == f"report: {lab['page']} (open it in a browser)"
    assert stat.S_IMODE(lab["page"].stat().st_mode) == 0o600
    page = parse(lab["page"].read_text())
    assert list(page.hosts) == list(IPS)
    assert {"base", "packages", "keystone", "finalize"} <= set(page.hosts["controller"])
    assert "0 changed, " in "".join(page.text)
    assert all(shown["outcome"] in ("skipped", "ok") for phases in page.hosts.values() for shown in phases.values())


def test_a_failed_install_writes_the_report_with_its_failure(lab, capsys, monkeypatch):
    from bootstrap import runner

    monkeypatch.setattr(runner, "run_plan", lambda plan, inv, *a, **k: synthetic_run(plan, list(IPS),
                                                                                      ("object1", "swift-storage")))

    code, out, _ = run(lab, capsys, "install")

    assert code == 1
    assert out[-1] == f"report: {lab['page']} (open it in a browser)"
    html = lab["page"].read_text()
    page = parse(html)
    assert page.hosts["object1"]["swift-storage"]["outcome"] == "failed"
    assert page.hosts["object1"]["finalize"]["outcome"] == "not run"
    assert "object1: step swift-storage/" in "".join(page.text) and "FAILED" in page.text


def test_lab_verify_adds_its_table_and_keeps_the_install_timeline(lab, capsys, monkeypatch):
    _converged_run(monkeypatch)
    assert run(lab, capsys, "install")[0] == 0
    monkeypatch.setattr("bootstrap.verify.run_checks", lambda checks, factory, secrets: synthetic_checks())

    code, out, _ = run(lab, capsys, "verify")

    assert code == 1  # one synthetic check failed
    assert out[-1] == f"report: {lab['page']} (open it in a browser)"
    page = parse(lab["page"].read_text())
    assert list(page.hosts) == list(IPS)  # the install's timeline is still there
    assert [r[:3] for r in page.rows if r] == [[c.host, c.name, "PASS" if c.passed else "FAIL"]
                                               for c in synthetic_checks()]
