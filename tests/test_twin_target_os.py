"""`os:` on the twin is explicit: a config whose OS the twin cannot boot hears so at `lab up`, in one line."""

from __future__ import annotations

from types import SimpleNamespace

from twin.target import TwinTarget


def spec(os_name: str):
    return SimpleNamespace(openstack=SimpleNamespace(os=os_name))


def test_a_config_for_ubuntu_is_told_the_twin_runs_debian_and_what_to_write():
    line = TwinTarget("http://127.0.0.1:5000").describe(spec("ubuntu-18.04"))
    assert "\n" not in line
    assert "Debian 12 with the debian-12 profile, not the config's ubuntu-18.04" in line
    assert "`openstack: {os: debian-12}`" in line


def test_a_config_for_debian_is_not_warned():
    line = TwinTarget("http://127.0.0.1:5000").describe(spec("debian-12"))
    assert "as the config says" in line and "openstack: {os:" not in line
