"""`os:` on the twin is explicit: a config whose OS the twin cannot boot hears so at `lab up`, in one line."""

from __future__ import annotations

from types import SimpleNamespace

from twin.target import TwinTarget


def spec(os_name: str):
    return SimpleNamespace(openstack=SimpleNamespace(os=os_name))


def test_a_config_for_ubuntu_is_told_the_twin_runs_debian_and_what_to_write():
    line = TwinTarget("http://127.0.0.1:5000").describe(spec("ubuntu-18.04"))
    assert "\n" not in line
    assert "Debian 12 with the debian-12 profile and its login user, not the config's ubuntu-18.04" in line
    assert "`openstack: {os: debian-12}`" in line


def test_a_config_for_debian_is_not_warned():
    line = TwinTarget("http://127.0.0.1:5000").describe(spec("debian-12"))
    assert "as the config says" in line and "openstack: {os:" not in line


def test_the_twin_runs_the_debian_profile_and_its_login_user_and_says_what_the_config_said(tmp_path):
    from lab.config import load_config

    config = tmp_path / "lab.yaml"
    config.write_text("name: os-lab\nregion: ap-northeast-2\nopenstack: {release: rocky, os: ubuntu-18.04}\n"
                      "nodes:\n  controller: {role: controller, type: t3.large}\n")
    target = TwinTarget("http://127.0.0.1:5000")
    spec = target.effective_spec(load_config(config))
    assert spec.openstack.os == "debian-12" and spec.ssh_user == "admin"  # the image's user, made by cloud-init
    assert "not the config's ubuntu-18.04" in target.describe(spec)
