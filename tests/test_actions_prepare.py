"""`lab up` prepares the hosts with the same base steps, through the same runner, as `lab install`."""

from __future__ import annotations

import pytest
from fakes import IMAGE_HOSTS, base_hosts
from plan_fixtures import IPS, inventory

from lab import prepare
from lab.hostsfile import render_hosts
from labcore.errors import RemoteError
from labcore.secrets import generate


def test_lab_up_sets_the_base_state_and_lab_install_finds_it_done(tmp_path, monkeypatch):
    inv = inventory("debian-12")
    hosts = base_hosts(tmp_path, "debian-12")
    storage_after: list[tuple[str, str]] = []

    def storage(remote, volumes):
        # The volumes come after first boot and the names: the host is named already.
        storage_after.append((remote.name, hosts[remote.name].read("/running-hostname").strip()))
        return []

    monkeypatch.setattr(prepare, "prepare_storage", storage)
    reports = prepare.prepare_hosts(inv, lambda node: hosts[node.name], progress=lambda line: None,
                                    log_dir=tmp_path / "logs")

    assert [str(r) for r in reports] == [f"{n}: host-programs, first-boot, hostname, hosts-file set" for n in IPS]
    assert sorted(storage_after) == sorted((n, n) for n in IPS)
    for name, host in hosts.items():
        assert host.read("/etc/hosts") == render_hosts(IMAGE_HOSTS, inv)
    # `lab install` starts with the very same steps: on these hosts they have nothing left to do.
    from bootstrap.plan import Plan
    from bootstrap.planner import build_plan
    from bootstrap.runner import run_plan

    full = build_plan(inv, generate())
    same = Plan(tuple(s for s in full.steps if s.name in {"host-programs", "first-boot", "hostname", "hosts-file"}))
    again = run_plan(same, inv, lambda node: hosts[node.name], generate(), log_dir=tmp_path / "logs",
                     progress=lambda line: None)
    assert again.ok and again.counts()["changed"] == 0


def test_lab_up_stops_before_the_volumes_on_a_host_of_another_os(tmp_path, monkeypatch):
    inv = inventory("ubuntu-18.04")
    hosts = base_hosts(tmp_path, "debian-12")
    monkeypatch.setattr(prepare, "prepare_storage", lambda remote, volumes: pytest.fail("volumes prepared"))

    with pytest.raises(RemoteError) as refused:
        prepare.prepare_hosts(inv, lambda node: hosts[node.name], progress=lambda line: None, log_dir=tmp_path / "l")

    assert refused.value.exit_code == 1
    assert "but the lab's config says os: ubuntu-18.04" in str(refused.value).splitlines()[0]
