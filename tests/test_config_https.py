"""https.allow_from: who may reach the front door (443), with SSH's forms, bounds and warnings.

Unset, it is ssh.allow_from. Bad values go through `lab up` as a user runs it: exit 2, one
line naming the file and key, no EC2 client built.
"""

from __future__ import annotations

import pytest
import test_config
from test_config import GOOD
from test_config_values import assert_refused

from lab import cli
from lab.commands.lifetime import warnings
from lab.config import parse_config

ec2_calls = test_config.ec2_calls  # the fixture: every EC2 client built, a bad config builds none
SSH = "ssh: {allow_from: [198.51.100.7/32]}\n"


def with_https(https: str, ssh: str = SSH, auth: str = "") -> str:
    return GOOD + ssh + f"https: {https}\n" + auth


def test_unset_the_front_door_takes_the_ssh_sources_and_their_bounds():
    spec = parse_config(GOOD + SSH)
    assert spec.https_allow_from == ["198.51.100.7/32"] and spec.https_allow_wide is False
    assert parse_config(GOOD).https_allow_from == ["auto"]  # resolved once with SSH's at `lab up`
    wide = parse_config(GOOD + "ssh: {allow_wide: true, allow_from: [0.0.0.0/0]}\n")
    assert wide.https_allow_from == ["0.0.0.0/0"] and wide.https_allow_wide is True


@pytest.mark.parametrize("allow_from, expected", [
    ("[203.0.113.0/24]", ["203.0.113.0/24"]),  # narrower or elsewhere than SSH
    ("[auto, 10.0.0.0/8]", ["auto", "10.0.0.0/8"]),  # wider, up to a /8 beside the caller
])
def test_https_allow_from_narrows_or_widens_the_door_alone(allow_from, expected):
    spec = parse_config(with_https(f"{{allow_from: {allow_from}}}"))
    assert spec.https_allow_from == expected and spec.ssh.allow_from == ["198.51.100.7/32"]


def test_a_tempauth_lab_has_no_front_door_to_open():
    spec = parse_config(with_https("{allow_from: [203.0.113.0/24]}", auth="auth: tempauth\n"))
    assert spec.https_allow_from == []
    assert "warning: https: is set, but a TempAuth lab has no front door: port 443 stays closed" in warnings(spec)
    assert parse_config(GOOD + SSH + "auth: tempauth\n").https_allow_from == []


@pytest.mark.parametrize("https, key, words", [
    ("{allow_from: [0.0.0.0/0]}", "https.allow_from", ("open HTTPS to the whole internet", "https.allow_wide: true")),
    ("{allow_from: [0.0.0.0/1, 128.0.0.0/1]}", "https.allow_from", ("open HTTPS to", "more than a /8")),
    ("{allow_from: [10.0.0.0/8, 11.0.0.0/8]}", "https.allow_from", ("more than a /8",)),
    ("{allow_from: [10.0.0.0/33]}", "https.allow_from", ("'auto' or an IPv4 CIDR",)),
    ("{allow_from: []}", "https.allow_from", ("at least 1",)),
    ("{allow_from: 203.0.113.0/24}", "https.allow_from", ("valid list",)),
    ("{allow_wide: 'yes please', allow_from: [0.0.0.0/0]}", "https.allow_wide", ("valid boolean",)),
    ("{allow_from: [auto], port: 8443}", "https.port", ("unknown key",)),
    ("[203.0.113.0/24]", "https", ("HttpsSpec",)),
], ids=["everything", "two halves", "two /8s", "bad cidr", "empty", "not a list", "allow_wide not a boolean",
        "unknown key", "not a mapping"])
def test_a_bad_https_value_is_one_line_exit_2_naming_the_key(tmp_path, capsys, ec2_calls, https, key, words):
    assert_refused(tmp_path, capsys, ec2_calls, with_https(https), key, *words)


def test_allow_wide_opens_the_door_wide_and_up_warns_each_time(tmp_path, capsys, ec2_calls):
    config = tmp_path / "lab.yaml"
    config.write_text(with_https("{allow_wide: true, allow_from: [0.0.0.0/0]}"))
    assert parse_config(config.read_text()).https_allow_from == ["0.0.0.0/0"]

    assert cli.main(["--target", "aws", "--config", str(config), "up", "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "warning: https.allow_wide is set: HTTPS (443, the dashboard and the APIs) is open to 0.0.0.0/0" in out
    assert "ssh.allow_wide" not in out and ec2_calls == []


def test_ssh_opened_wide_says_the_door_is_as_wide_when_https_is_unset():
    spec = parse_config(GOOD + "ssh: {allow_wide: true, allow_from: [0.0.0.0/0]}\n")
    assert warnings(spec) == [
        "warning: ssh.allow_wide is set: SSH is open to 0.0.0.0/0",
        "warning: ssh.allow_wide is set and https.allow_from is not: HTTPS (443, the dashboard and the APIs) "
        "is open to 0.0.0.0/0"]
    assert warnings(parse_config(GOOD + SSH)) == []


def _sources(count: int, third: int = 113) -> str:
    return "[" + ", ".join(f"203.0.{third}.{i}/32" for i in range(count)) + "]"


def test_ssh_and_https_sources_beyond_what_a_group_holds_are_refused(tmp_path, capsys, ec2_calls):
    inherited = GOOD + f"ssh: {{allow_from: {_sources(26)}}}\n"  # 26 for SSH, the same 26 for HTTPS
    err = assert_refused(tmp_path, capsys, ec2_calls, inherited, "ssh.allow_from", "at most 50", "got 52",
                         "https.allow_from is not set")
    assert "HTTPS" in err
    own = GOOD + f"ssh: {{allow_from: {_sources(30)}}}\nhttps: {{allow_from: {_sources(21, 114)}}}\n"
    assert_refused(tmp_path, capsys, ec2_calls, own, "https.allow_from", "at most 50", "got 51")


def test_as_many_sources_as_the_group_holds_are_accepted_and_tempauth_counts_ssh_alone():
    assert parse_config(GOOD + f"ssh: {{allow_from: {_sources(25)}}}\n").https_allow_from[-1] == "203.0.113.24/32"
    tempauth = parse_config(GOOD + f"ssh: {{allow_from: {_sources(50)}}}\nauth: tempauth\n")
    assert len(tempauth.ssh.allow_from) == 50 and tempauth.https_allow_from == []
