"""`lab run [--role ROLE] [NODE...] -- CMD`: one command on many nodes at once, as root, a table of what each did."""

from __future__ import annotations

import subprocess
import time

import pytest
from invoke.exceptions import CommandTimedOut
from invoke.runners import Result
from test_ops_support import SECRET, AsSshdWould, SudoRemote, Unreachable, up_lab

from lab import cli
from lab.fleet import host_script, run_on_nodes
from lab.ssh import sudo_wrap
from labcore.remote import RunResult

USER_COMMAND = "systemctl is-active chrony"


def _hosts(**answers: RunResult) -> dict:
    hosts = {}
    for name in ("controller", "object1", "object2"):
        hosts[name] = SudoRemote(name).answer(r"^timeout -k 5 \d+ sh -c ", answers.get(name, RunResult(0, "active\n")))
    return hosts


@pytest.fixture
def lab(tmp_path, monkeypatch):
    return up_lab(tmp_path, monkeypatch, _hosts())


def test_lab_run_runs_the_command_as_root_on_every_node_and_shows_each_hosts_result(lab, capsys):
    assert cli.main(lab.argv("run", "--", "systemctl", "is-active", "chrony")) == 0
    out = capsys.readouterr().out
    for name, host in lab.hosts.items():
        assert host.commands == [host_script(USER_COMMAND, 300)] and name in out
        assert host.asked[0]["sudo"] is True and host.asked[0]["stdin"] is None and host.closed
    assert out.count("active") == 3 and "3 of 3 hosts succeeded" in out


def test_the_command_reaches_the_host_on_sudos_stdin_never_in_its_argv():
    argv, stdin = sudo_wrap(host_script("echo " + SECRET, 300))
    assert SECRET not in argv and argv.startswith("sudo -n sh -c") and SECRET in stdin


def test_only_the_last_lines_of_output_are_shown(tmp_path, monkeypatch, capsys):
    many = "".join(f"line-{i:02d}\n" for i in range(20))
    lab = up_lab(tmp_path, monkeypatch, _hosts(controller=RunResult(0, many)))
    assert cli.main(lab.argv("run", "--lines", "3", "controller", "--", "journalctl")) == 0
    out = capsys.readouterr().out
    assert "line-17" in out and "line-19" in out and "line-16" not in out


def test_a_failing_host_shows_its_stderr_and_the_run_exits_1(tmp_path, monkeypatch, capsys):
    lab = up_lab(tmp_path, monkeypatch, _hosts(object2=RunResult(3, "inactive\n", "chronyd is not running\n")))
    assert cli.main(lab.argv("run", "--", USER_COMMAND)) == 1
    out = capsys.readouterr().out
    assert "chronyd is not running" in out and "inactive" in out
    assert "2 of 3 hosts succeeded; failed: object2" in out


def test_stderr_of_a_host_that_succeeded_is_not_shown(tmp_path, monkeypatch, capsys):
    lab = up_lab(tmp_path, monkeypatch, _hosts(controller=RunResult(0, "fine\n", "a warning nobody asked for\n")))
    assert cli.main(lab.argv("run", "controller", "--", "true")) == 0
    out = capsys.readouterr().out
    assert "fine" in out and "a warning nobody asked for" not in out


def test_a_host_that_cannot_be_reached_says_why_in_its_row_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    hosts = _hosts()
    hosts["object2"] = Unreachable("object2")
    lab = up_lab(tmp_path, monkeypatch, hosts)
    assert cli.main(lab.argv("run", "--", "uptime")) == 1
    out = capsys.readouterr().out
    assert "unreachable" in out and "No route to host" in out and "failed: object2" in out
    assert len(hosts["controller"].commands) == 1 and len(hosts["object1"].commands) == 1


def test_a_secret_in_a_hosts_output_is_masked_in_the_table(tmp_path, monkeypatch, capsys):
    lab = up_lab(tmp_path, monkeypatch, _hosts(controller=RunResult(1, f"password = {SECRET}\n", f"bad {SECRET}\n")))
    assert cli.main(lab.argv("run", "controller", "--", "grep", "-r", "password", "/etc/keystone")) == 1
    out = capsys.readouterr().out
    assert SECRET not in out and "password = ********" in out and "bad ********" in out


def test_role_and_node_names_combine(lab, capsys):
    assert cli.main(lab.argv("run", "--role", "controller", "object2", "--", "hostname")) == 0
    assert lab.hosts["controller"].commands and lab.hosts["object2"].commands
    assert lab.hosts["object1"].commands == []


def test_role_alone_chooses_the_nodes_of_that_role(lab, capsys):
    assert cli.main(lab.argv("run", "--role", "object", "--", "df", "-h", "/srv/node")) == 0
    assert [n for n, h in lab.hosts.items() if h.commands] == ["object1", "object2"]
    assert lab.hosts["object1"].commands == [host_script("df -h /srv/node", 300)]


@pytest.mark.parametrize("words, expected", [
    (["object9", "--", "true"], "no node named 'object9' in lab rocky-lab (nodes: controller, object1, object2)"),
    (["--role", "proxy", "--", "true"], "--role 'proxy': expected one of controller, object"),
    (["true"], "put the command after --"),
    (["object1", "--"], "no command after --"),
    (["object1", "--timeout", "3", "--", "true"], "options go before the node names"),
    (["--timeout", "0", "--", "true"], "--timeout '0': expected a number from 1 to 86400"),
    (["--lines", "many", "--", "true"], "--lines 'many': expected a number"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_runs(lab, capsys, words, expected):
    assert cli.main(lab.argv("run", *words)) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert all(h.commands == [] for h in lab.hosts.values())


def test_without_the_labs_key_nothing_runs(lab, capsys):
    lab.paths.key_file.unlink()
    assert cli.main(lab.argv("run", "--", "true")) == 2
    assert "id_ed25519 is missing" in capsys.readouterr().err
    assert all(h.commands == [] for h in lab.hosts.values())


def test_the_timeout_option_bounds_the_command_on_the_host_and_the_wait_here(lab, capsys):
    assert cli.main(lab.argv("run", "--timeout", "7", "object1", "--", "sleep", "60")) == 0
    assert lab.hosts["object1"].commands == ["timeout -k 5 7 sh -c 'sleep 60' </dev/null"]
    assert lab.hosts["object1"].asked[0]["timeout"] == 7 + 5 + 15


def test_a_command_the_host_stopped_at_its_timeout_is_a_failure_that_says_so(capsys):
    from plan_fixtures import inventory

    from lab.commands.ops import render_results

    ticks = iter([0.0, 8.0])
    host = SudoRemote("object1").answer("^timeout", RunResult(124, "partial\n"))
    results = run_on_nodes([inventory().node("object1")], lambda n: host, "sleep 60", timeout=7,
                           clock=lambda: next(ticks))
    assert not results[0].ok and results[0].timed_out and results[0].seconds == 8.0
    render_results(results, 5, str)
    assert "stopped: its time (--timeout) was up" in capsys.readouterr().out


def test_a_host_that_never_answers_is_given_up_on_with_a_reason():
    from plan_fixtures import inventory

    class Silent(SudoRemote):
        def run(self, command, **kwargs):
            raise CommandTimedOut(Result(command=command, exited=-1), timeout=kwargs["timeout"])

    [result] = run_on_nodes([inventory().node("object2")], lambda n: Silent("object2"), "true", timeout=10)
    assert result.exited is None and not result.ok and "no answer within 30 s" in result.error


def test_the_host_script_really_stops_a_command_when_its_time_is_up():
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", host_script("sleep 30; echo never", 1)], capture_output=True, text=True)
    assert done.returncode == 124 and "never" not in done.stdout and time.monotonic() - started < 10


def test_the_host_script_keeps_the_command_as_the_shell_reads_it():
    done = subprocess.run(["bash", "-c", host_script("echo 'a  b' | tr a A; exit 4", 10)], capture_output=True,
                          text=True)
    assert done.returncode == 4 and done.stdout == "A  b\n"


def test_a_command_with_quotes_and_pipes_runs_as_typed_through_the_sudo_wrapping(tmp_path, monkeypatch, capsys):
    hosts = _hosts()
    hosts["object1"] = AsSshdWould("object1")
    lab = up_lab(tmp_path, monkeypatch, hosts)
    assert cli.main(lab.argv("run", "object1", "--", "printf '%s\\n' 'a  b' | tr a A; echo oops >&2; exit 6")) == 1
    out = capsys.readouterr().out
    assert "A  b" in out and "oops" in out and " 6 " in out
