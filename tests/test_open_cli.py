"""`lab openrc`, `lab open`: the cloud from this machine, and never a password on a terminal.

No EC2 call and no SSH: both read what `lab up` and `lab install` left in .lab/<name>/.
No test opens a real browser: webbrowser is replaced by a recorder in every test here.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import webbrowser
from pathlib import Path

import pytest
from plan_fixtures import inventory
from test_laptop_openrc import PUBLIC_DNS, aws_inventory
from test_plan_tempauth import tempauth_inventory

from lab import cli
from lab.commands.install import _write_rc_files
from lab.target import Target
from labcore.inventory import save_inventory
from labcore.paths import LabPaths
from labcore.secrets import MASK, ensure_secrets

ROOT = Path(__file__).resolve().parent.parent
CONFIG = (ROOT / "configs" / "lab.yaml").read_text()
LAB = str(ROOT / ".venv" / "bin" / "lab")


class Browsers:
    """webbrowser as the commands see it: which browser this machine has, and what was opened."""

    def __init__(self):
        self.opened: list[str] = []
        self.name: str | None = "firefox"  # None: no browser at all

    def get(self, using=None):
        if self.name is None:
            raise webbrowser.Error("could not locate runnable browser")
        browsers = self

        class Browser(webbrowser.BaseBrowser):
            def open(self, url, new=0, autoraise=True):
                browsers.opened.append(url)
                return True

        return Browser(self.name)


@pytest.fixture(autouse=True)
def browsers(monkeypatch) -> Browsers:
    fake = Browsers()
    monkeypatch.setattr(webbrowser, "get", fake.get)
    monkeypatch.setattr(webbrowser, "open", lambda *a, **k: pytest.fail("a real browser was asked for"))
    return fake


def made(tmp_path, monkeypatch, inv=None, *, installed: bool = True, config: str = CONFIG) -> dict:
    """A lab that is up here (inventory, secrets) and, if installed, with the rc files `lab install` writes."""
    path = tmp_path / "lab.yaml"
    path.write_text(config)
    inv = inv or aws_inventory()
    paths = LabPaths.for_lab(inv.lab).ensure()
    save_inventory(inv, paths.inventory)
    secrets = ensure_secrets(paths, lambda line: None, hosts_exist=lambda: False)
    if installed:
        _write_rc_files(paths, inv, secrets)
    monkeypatch.setattr(Target, "ec2_client", lambda self, region: pytest.fail("no EC2 call expected"))
    return {"config": str(path), "paths": paths, "secrets": secrets, "inventory": inv}


def run(lab: dict, capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--config", lab["config"], "--target", "aws", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------ lab openrc
@pytest.mark.parametrize("argv, which", [((), "demo"), (("demo",), "demo"), (("admin",), "admin")])
def test_into_a_pipe_openrc_prints_the_file_itself(tmp_path, monkeypatch, capsys, argv, which):
    lab = made(tmp_path, monkeypatch)
    code, out, err = run(lab, capsys, "openrc", *argv)
    assert code == 0 and err == ""
    assert out == lab["paths"].openrc(which).read_text()
    assert f"OS_PASSWORD={lab['secrets'][f'{which}_pass']}" in out


def test_eval_of_lab_openrc_gives_a_shell_the_laptop_variables(tmp_path, monkeypatch):
    lab = made(tmp_path, monkeypatch)
    shell = (f'eval "$({LAB} --config {lab["config"]} --target aws openrc demo)"; '
             'echo "$OS_AUTH_URL|$OS_INTERFACE|$OS_CACERT|$OS_USERNAME|$OS_PASSWORD"')
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=True, timeout=60,
                         env={**os.environ, "LAB_HOME": os.environ["LAB_HOME"]}).stdout.strip()
    assert out == (f"https://{PUBLIC_DNS}/identity/v3|public|{lab['paths'].ca_cert}|myuser|"
                   f"{lab['secrets']['demo_pass']}")


def test_on_a_terminal_the_password_is_masked_and_the_way_to_use_it_is_said(tmp_path, monkeypatch):
    """A real terminal (a pty), as a person runs `lab openrc`."""
    lab = made(tmp_path, monkeypatch)
    shown = _on_a_terminal([LAB, "--config", lab["config"], "--target", "aws", "openrc", "admin"])
    assert lab["secrets"]["admin_pass"] not in shown and lab["secrets"]["demo_pass"] not in shown
    assert f"export OS_PASSWORD={MASK}" in shown and f"OS_AUTH_URL=https://{PUBLIC_DNS}/identity/v3" in shown
    assert 'eval "$(lab openrc admin)"' in shown and f"source {lab['paths'].openrc('admin')}" in shown


def _on_a_terminal(argv: list[str]) -> str:
    main, child = pty.openpty()
    process = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env=dict(os.environ, COLUMNS="300"))
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_before_install_openrc_says_to_run_it_exit_1(tmp_path, monkeypatch, capsys):
    lab = made(tmp_path, monkeypatch, installed=False)
    code, out, err = run(lab, capsys, "openrc")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert str(lab["paths"].openrc("demo")) in err and "make lab-install" in err


def test_a_tempauth_lab_prints_its_swiftrc_the_same_way(tmp_path, monkeypatch, capsys):
    lab = made(tmp_path, monkeypatch, tempauth_inventory(),
               config=CONFIG.replace("name: rocky-lab", "name: swift-lab") + "auth: tempauth\n")
    code, out, _ = run(lab, capsys, "openrc", "admin")
    assert code == 0 and out == lab["paths"].swiftrc("admin").read_text() and "ST_KEY=" in out
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, _ = run(lab, capsys, "openrc", "admin")
    assert code == 0 and f"export ST_KEY={MASK}" in out
    assert not any(value in out for value in lab["secrets"].values.values())


def test_an_openrc_from_an_older_install_is_printed_with_a_warning(tmp_path, monkeypatch, capsys):
    lab = made(tmp_path, monkeypatch)
    from bootstrap.components.keystone import openrc as guide_openrc

    lab["paths"].openrc("demo").write_text(guide_openrc(lab["inventory"], lab["secrets"], "demo"))
    code, out, err = run(lab, capsys, "openrc")
    assert code == 0 and "http://controller:5000/v3" in out
    assert err.count("\n") == 1 and "make lab-install" in err and lab["secrets"]["demo_pass"] not in err


# ------------------------------------------------------------------ lab open
def test_open_prints_the_url_and_login_and_opens_the_browser(tmp_path, monkeypatch, capsys, browsers):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    lab = made(tmp_path, monkeypatch)
    code, out, _ = run(lab, capsys, "open")
    url = f"https://{PUBLIC_DNS}/dashboard/"
    assert code == 0 and browsers.opened == [url]
    lines = out.splitlines()
    assert lines[0] == url
    assert "domain Default, user myuser" in out and str(lab["paths"].openrc("demo")) in out
    assert str(lab["paths"].ca_cert) in out and "opened in your browser" in out
    assert not any(value in out for value in lab["secrets"].values.values())


@pytest.mark.parametrize("display, browser", [(None, "firefox"), (":0", None), (":0", "w3m"), (":0", "www-browser")],
                         ids=["no display", "no browser", "a text browser", "debian's www-browser"])
def test_without_a_browser_open_prints_the_url_and_the_ca_to_trust(tmp_path, monkeypatch, capsys, browsers,
                                                                   display, browser):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if display:
        monkeypatch.setenv("DISPLAY", display)
    else:
        monkeypatch.delenv("DISPLAY", raising=False)
    browsers.name = browser
    lab = made(tmp_path, monkeypatch)
    code, out, _ = run(lab, capsys, "open")
    assert code == 0 and browsers.opened == []
    assert out.splitlines()[0] == f"https://{PUBLIC_DNS}/dashboard/"
    assert f"trust {lab['paths'].ca_cert}" in out and "no browser to open here" in out


def test_wayland_alone_is_a_display(tmp_path, monkeypatch, capsys, browsers):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    lab = made(tmp_path, monkeypatch)
    assert run(lab, capsys, "open")[0] == 0 and len(browsers.opened) == 1


def test_on_the_twin_the_dashboard_is_at_the_controllers_address(tmp_path, monkeypatch, capsys, browsers):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    inv = inventory("debian-12")  # target sim
    lab = made(tmp_path, monkeypatch, inv)
    code, out, _ = run(lab, capsys, "open")
    assert code == 0 and out.splitlines()[0] == f"https://{inv.controller.ssh_host}/dashboard/"


def test_open_before_install_says_to_run_it_and_a_tempauth_lab_has_no_dashboard(tmp_path, monkeypatch, capsys,
                                                                                browsers):
    lab = made(tmp_path, monkeypatch, installed=False)
    code, out, err = run(lab, capsys, "open")
    assert code == 1 and out == "" and "make lab-install" in err and err.count("\n") == 1
    tempauth = made(tmp_path, monkeypatch, tempauth_inventory(),
                    config=CONFIG.replace("name: rocky-lab", "name: swift-lab") + "auth: tempauth\n")
    code, out, err = run(tempauth, capsys, "open")
    assert code == 2 and out == "" and "no dashboard" in err and err.count("\n") == 1
    assert browsers.opened == []
