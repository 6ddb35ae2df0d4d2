"""What region, ssh and expires_after may be: checked before any call, with a line that helps.

Bad values go through `lab up` as a user would run it: exit 2, one line, no EC2 client built.
"""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import test_config
from test_config import GOOD, run_lab

from lab.config import ConfigError, parse_config
from lab.config_values import ec2_regions

ec2_calls = test_config.ec2_calls  # the fixture: every EC2 client built, a bad config builds none


def with_region(region: str) -> str:
    return GOOD.replace("region: ap-northeast-2", f"region: {region}")


def with_ssh(ssh: str) -> str:
    return GOOD + f"ssh: {ssh}\n"


def with_expiry(value: str) -> str:
    return GOOD + f"expires_after: {value}\n"


def assert_refused(tmp_path, capsys, ec2_calls, config: str, key: str, *words: str) -> str:
    code, err = run_lab(tmp_path, capsys, config)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"lab.yaml: {key}: " in err and all(word in err for word in words), err
    assert ec2_calls == []
    return err


# --- region -------------------------------------------------------------------------------------

@pytest.mark.parametrize("region", ["us-east-1", "ap-northeast-2", "eu-central-2", "cn-north-1", "cn-northwest-1",
                                    "us-gov-west-1", "us-iso-east-1", "us-isob-east-1", "eusc-de-east-1"])
def test_every_partitions_ec2_regions_are_accepted(region):
    assert parse_config(with_region(region)).region == region


def test_regions_come_from_botocore_without_network(monkeypatch):
    """botocore's endpoint data ships with it: the check opens no connection."""
    ec2_regions.cache_clear()

    def no_network(*args, **kwargs):
        raise AssertionError("the region check opened a socket")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert parse_config(with_region("sa-east-1")).region == "sa-east-1"
    assert {"us-east-1", "cn-north-1", "us-gov-east-1"} <= ec2_regions()


@pytest.mark.parametrize("region, suggested", [
    ("ap-northeast-9", "ap-northeast-1"), ("us-est-1", "us-east-1"), ("eu-west", "eu-west-1"),
    ("us-gov-west", "us-gov-west-1"), ("cn-north1", "cn-north-1"),
])
def test_an_unknown_region_is_exit_2_suggesting_close_names(tmp_path, capsys, ec2_calls, region, suggested):
    err = assert_refused(tmp_path, capsys, ec2_calls, with_region(region), "region",
                         f"'{region}' is not a region botocore knows for EC2", "did you mean", suggested)
    assert "Traceback" not in err


def test_a_region_like_nothing_known_names_examples(tmp_path, capsys, ec2_calls):
    assert_refused(tmp_path, capsys, ec2_calls, with_region("moon-base-1"), "region", "for example us-east-1")


def test_a_region_that_is_not_text_is_refused(tmp_path, capsys, ec2_calls):
    assert_refused(tmp_path, capsys, ec2_calls, with_region("[us-east-1]"), "region", "valid string")


# --- ssh.allow_from -----------------------------------------------------------------------------

@pytest.mark.parametrize("allow_from", [
    "[0.0.0.0/0]", "[0.0.0.0/1, 128.0.0.0/1]", "[10.0.0.0/8, 11.0.0.0/8]", "[10.0.0.0/8, 203.0.113.7/32]",
    "[" + ", ".join(f"{i}.0.0.0/9" for i in range(1, 4)) + "]",
    "[" + ", ".join(f"{i}.0.0.0/9" for i in range(1, 34)) + "]",
], ids=["everything", "two halves", "two /8s", "a /8 and a host", "three /9s", "33 /9s"])
def test_ssh_open_to_more_than_a_slash_8_is_refused(tmp_path, capsys, ec2_calls, allow_from):
    assert_refused(tmp_path, capsys, ec2_calls, with_ssh(f"{{allow_from: {allow_from}}}"), "ssh.allow_from",
                   "ssh.allow_wide: true")


@pytest.mark.parametrize("allow_from", [
    "[10.0.0.0/8]", "[10.0.0.0/9, 10.128.0.0/9]", "[10.0.0.0/8, 10.1.0.0/16, 10.128.0.0/9]",
    "[auto, 198.51.100.0/24, 203.0.113.7/32]",
], ids=["one /8", "two /9s making a /8", "overlaps count once", "auto and ranges"])
def test_ssh_open_to_at_most_a_slash_8_is_accepted(allow_from):
    spec = parse_config(with_ssh(f"{{allow_from: {allow_from}}}"))
    assert spec.ssh.allow_from == [part.strip() for part in allow_from.strip("[]").split(",")]
    assert spec.ssh.allow_wide is False


@pytest.mark.parametrize("allow_from", ["[0.0.0.0/0]", "[0.0.0.0/1, 128.0.0.0/1]", "[auto, 10.0.0.0/7]"])
def test_allow_wide_true_opts_in_to_any_opening(allow_from):
    spec = parse_config(with_ssh(f"{{allow_wide: true, allow_from: {allow_from}}}"))
    assert spec.ssh.allow_wide is True and spec.ssh.allow_from[-1].endswith(("/0", "/1", "/7"))


@pytest.mark.parametrize("value", ["'true'", "1", "on-please"])
def test_allow_wide_takes_a_yaml_boolean_only(tmp_path, capsys, ec2_calls, value):
    assert_refused(tmp_path, capsys, ec2_calls, with_ssh(f"{{allow_wide: {value}, allow_from: [0.0.0.0/0]}}"),
                   "ssh.allow_wide", "valid boolean")


def test_allow_wide_still_checks_each_cidr(tmp_path, capsys, ec2_calls):
    assert_refused(tmp_path, capsys, ec2_calls, with_ssh("{allow_wide: true, allow_from: [0.0.0.0/33]}"),
                   "ssh.allow_from", "IPv4 CIDR")


def test_more_ssh_sources_than_a_security_group_holds_is_refused(tmp_path, capsys, ec2_calls):
    sources = ", ".join(f"203.0.113.{i}/32" for i in range(51))
    assert_refused(tmp_path, capsys, ec2_calls, with_ssh(f"{{allow_from: [{sources}]}}"), "ssh.allow_from",
                   "at most 50 entries", "got 51")


# --- expires_after ------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expiry", [
    ("45m", timedelta(minutes=45)), ("8h", timedelta(hours=8)), ("2d", timedelta(days=2)),
    ("1h30m", timedelta(hours=1, minutes=30)), ("1d12h", timedelta(days=1, hours=12)), ("90m", timedelta(minutes=90)),
    ("2m", timedelta(minutes=2)), ("30d", timedelta(days=30)), ("720h", timedelta(hours=720)),
    ("'1h 30m'", timedelta(hours=1, minutes=30)), ("8H", timedelta(hours=8)),
])
def test_expires_after_forms_become_the_labs_lifetime(value, expiry):
    assert parse_config(with_expiry(value)).expiry == expiry


@pytest.mark.parametrize("value", ["0", "'0'", "never", "Never", "0h", "0d0h0m"])
def test_expires_after_0_or_never_means_no_expiry(value):
    assert parse_config(with_expiry(value)).expiry is None


def test_expires_after_defaults_to_8_hours():
    spec = parse_config(GOOD)
    assert spec.expires_after == "8h" and spec.expiry == timedelta(hours=8)


@pytest.mark.parametrize("value, words", [
    ("8", ("say the unit", "8m, 8h or 8d")), ("-1h", ("before it starts",)), ("-5", ("before it starts",)),
    ("31d", ("longer than 30 days",)), ("721h", ("longer than 30 days",)), ("30d1m", ("longer than 30 days",)),
    ("1.5h", ("such as 45m",)), ("1.5", ("such as 45m",)), ("8x", ("such as 45m",)), ("h", ("such as 45m",)),
    ("30m2h", ("such as 45m",)), ("''", ("such as 45m",)), ("no", ("boolean", "write never")),
    ("[8h]", ("such as 45m",)), ("99999999999d", ("such as 45m",)),
])
def test_a_bad_expires_after_is_exit_2_in_one_line(tmp_path, capsys, ec2_calls, value, words):
    assert_refused(tmp_path, capsys, ec2_calls, with_expiry(value), "expires_after", *words)


# --- ssh.user -----------------------------------------------------------------------------------

@pytest.mark.parametrize("openstack, ssh, user", [
    ("", "", "ubuntu"), ("openstack: {os: ubuntu-18.04}\n", "", "ubuntu"),
    ("openstack: {os: debian-12}\n", "", "admin"),
    ("openstack: {os: debian-12}\n", "ssh: {user: ops}\n", "ops"), ("", "ssh: {user: ec2-user}\n", "ec2-user"),
])
def test_ssh_user_is_the_configs_or_the_images_login_user(openstack, ssh, user):
    assert parse_config(GOOD + openstack + ssh).ssh_user == user


def test_a_bad_ssh_user_is_refused():
    with pytest.raises(ConfigError, match=r"ssh.user: expected text matching"):
        parse_config(GOOD + "ssh: {user: 'root; rm -rf /'}\n")
