"""The lab's tempest.conf for both profiles, held to the options Tempest itself defines (issue 22)."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest

from bootstrap.conformance import tempest_conf

OPTIONS = json.loads((Path(__file__).parent / "data" / "tempest_options.json").read_text())["tags"]
# Options of oslo libraries Tempest loads, not in tempest/config.py.
OSLO = {"DEFAULT": {"log_file", "use_stderr"}, "oslo_concurrency": {"lock_path"}}
INFO = {"swift": {"version": "2.30.0"}, "tempurl": {"methods": ["GET"]}, "slo": {}, "account_quotas": {},
        "container_sync": {"realms": {"LAB": {"clusters": {"LAB1": {}}}}}}
PASSWORD = "s3cr3t-admin-pass"


def _own(conf: configparser.ConfigParser, section: str) -> dict[str, str]:
    """A section's own keys, without the [DEFAULT] values configparser shows in every section."""
    return {k: v for k, v in conf[section].items() if k not in conf.defaults()}


def _parsed(profile: str, **kwargs) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(tempest_conf.render(profile, PASSWORD, INFO, **kwargs))
    return parser


@pytest.mark.parametrize("profile", sorted(tempest_conf.FEATURES))
def test_every_option_written_is_one_the_profiles_tempest_defines(profile):
    known = OPTIONS[tempest_conf.FEATURES[profile].tempest]["groups"]
    parsed = _parsed(profile, ca_file="/etc/ssl/lab-ca.pem")
    for section in parsed.sections():
        allowed = set(known.get(section, ())) | OSLO.get(section, set())
        written = set(_own(parsed, section))
        assert written <= allowed, f"{section}: {written - allowed} unknown to Tempest"
    assert set(parsed.defaults()) <= OSLO["DEFAULT"]


@pytest.mark.parametrize("profile", sorted(tempest_conf.FEATURES))
def test_tempest_logs_in_as_the_labs_admin_through_the_guides_keystone(profile):
    conf = _parsed(profile)
    assert conf["auth"]["admin_password"] == PASSWORD and conf["auth"]["admin_username"] == "admin"
    assert conf["auth"]["use_dynamic_credentials"] == "true"
    assert conf["identity"]["uri_v3"] == "http://controller:5000/v3"
    assert conf["identity"]["region"] == "RegionOne"


@pytest.mark.parametrize("profile", sorted(tempest_conf.FEATURES))
def test_only_swift_is_available_and_its_roles_are_the_labs(profile):
    conf = _parsed(profile)
    assert _own(conf, "service_available") == {"swift": "true", "cinder": "false", "glance": "false",
                                               "neutron": "false", "nova": "false"}
    assert conf["object-storage"]["operator_role"] == "myrole"
    assert conf["object-storage"]["reseller_admin_role"] == "ResellerAdmin"


def test_the_discoverable_apis_are_what_the_proxy_announces():
    conf = _parsed("debian-12")
    assert conf["object-storage-feature-enabled"]["discoverable_apis"] == "account_quotas,container_sync,slo,tempurl"


def test_access_rules_are_tested_where_keystone_has_them_and_not_named_where_tempest_lacks_them():
    assert _parsed("debian-12")["identity-feature-enabled"]["access_rules"] == "true"
    assert "access_rules" not in _parsed("ubuntu-18.04")["identity-feature-enabled"]
    for profile in tempest_conf.FEATURES:
        assert _parsed(profile)["identity-feature-enabled"]["security_compliance"] == "false"


def test_a_ca_file_is_named_only_when_given():
    assert "ca_certificates_file" not in _parsed("debian-12")["identity"]
    assert _parsed("debian-12", ca_file="/etc/ssl/lab-ca.pem")["identity"]["ca_certificates_file"] == "/etc/ssl/lab-ca.pem"
