"""Secrets are generated once by `lab up`, kept 0600, never regenerated, and masked wherever text reaches a person."""

from __future__ import annotations

import os
import stat

import pytest
import yaml

from bootstrap.plan import FileSpec, Plan, Step
from labcore.errors import CloudStateError
from labcore.paths import LabPaths, StateFileError
from labcore.secrets import (
    MASK,
    SECRET_NAMES,
    Secrets,
    ensure_secrets,
    generate,
    load_secrets,
)


def no_hosts() -> bool:
    return False


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def paths() -> LabPaths:
    return LabPaths.for_lab("rocky-lab")


def test_secrets_are_generated_once_with_mode_0600_even_under_umask_0(paths):
    lines: list[str] = []
    old = os.umask(0)
    try:
        first = ensure_secrets(paths, lines.append, hosts_exist=no_hosts)
    finally:
        os.umask(old)
    assert mode(paths.secrets) == 0o600 and mode(paths.root) == 0o700 and mode(paths.root.parent) == 0o700
    assert set(first.values) == set(SECRET_NAMES)
    assert len(set(first.values.values())) == len(SECRET_NAMES)  # no two alike
    assert any("secrets generated" in line for line in lines)
    assert not any(value in line for line in lines for value in first.values.values())

    def must_not_ask() -> bool:
        raise AssertionError("the cloud is asked only when secrets.yaml is missing")

    assert ensure_secrets(paths, lines.append, hosts_exist=must_not_ask).values == first.values
    assert load_secrets(paths.secrets, lines.append).values == first.values


def test_missing_secrets_are_never_regenerated_for_a_lab_that_has_instances(paths):
    with pytest.raises(CloudStateError) as refused:
        ensure_secrets(paths, print, hosts_exist=lambda: True)
    assert refused.value.exit_code == 1
    message = str(refused.value)
    assert "\n" not in message and str(paths.secrets) in message
    assert "already has instances" in message and "restore it from the checkout that made the lab" in message
    assert "`lab down`" in message
    assert not paths.secrets.exists()


def test_every_reader_requires_the_file_and_never_makes_a_new_set(paths):
    with pytest.raises(StateFileError) as refused:
        load_secrets(paths.secrets, print)
    assert "is missing" in str(refused.value) and "restore it" in str(refused.value)
    assert not paths.secrets.exists()


def test_a_secrets_file_written_meanwhile_by_another_run_is_kept_not_overwritten(paths):
    theirs = generate()

    def another_run_writes_it() -> bool:  # between "is it there?" and the write
        paths.ensure()
        paths.secrets.write_text(yaml.safe_dump(theirs.values))
        return False

    assert ensure_secrets(paths, print, hosts_exist=another_run_writes_it).values == theirs.values
    assert yaml.safe_load(paths.secrets.read_text()) == theirs.values


VALID = "\n".join(f"{name}: {'0123456789abcdef' * 2}" for name in SECRET_NAMES) + "\n"
DAMAGED = {
    "garbage": (b"\x00\x01\xff\xfe garbage", "not UTF-8"),
    "not yaml": (b"admin_pass: [unclosed\n", "invalid YAML"),
    "a list": (b"- admin_pass\n- demo_pass\n", "found list"),
    "empty": (b"", "it is empty"),
    "cut short": (VALID.encode()[:-60], "was it cut short"),
    "cut inside the last value": (VALID.encode()[:-10], "was it cut short"),
    "a number": (VALID.replace("admin_pass: 0123456789abcdef0123456789abcdef",
                               "admin_pass: 12345678901234").encode(), "'admin_pass'"),
    "an empty value": (VALID.replace("demo_pass: 0123456789abcdef0123456789abcdef", "demo_pass: ''").encode(),
                       "'demo_pass'"),
    "a nested value": (VALID.replace("rabbit_pass: 0123456789abcdef0123456789abcdef",
                                     "rabbit_pass: {a: b}").encode(), "'rabbit_pass'"),
    "a value needing quotes": (VALID.replace("swift_pass: 0123456789abcdef0123456789abcdef",
                                             "swift_pass: \"it's; rm -rf\"").encode(), "'swift_pass'"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_secrets_file_is_one_line_naming_it_and_is_left_as_it_is(paths, case):
    content, expected = DAMAGED[case]
    paths.ensure()
    paths.secrets.write_bytes(content)
    for read in (lambda: load_secrets(paths.secrets, print),
                 lambda: ensure_secrets(paths, print, hosts_exist=no_hosts)):
        with pytest.raises(StateFileError) as refused:
            read()
        message = str(refused.value)
        assert message.startswith(f"{paths.secrets} is damaged") and expected in message
        assert "\n" not in message and len(message) < 400
        assert "restore it from the checkout that made the lab" in message
    assert paths.secrets.read_bytes() == content  # never "repaired" into a new set


def test_a_secrets_file_others_can_read_is_put_back_to_0600_with_a_line(paths):
    ensure_secrets(paths, print, hosts_exist=no_hosts)
    os.chmod(paths.secrets, 0o644)
    lines: list[str] = []
    load_secrets(paths.secrets, lines.append)
    assert mode(paths.secrets) == 0o600
    assert lines == [f"{paths.secrets} was mode 0644: put back to 0600 (only you may read it)"]


def test_plan_output_masks_every_secret(paths):
    secrets = ensure_secrets(paths, print, hosts_exist=no_hosts)
    step = Step("keystone-db", "keystone", ("controller",),
                commands=(f"mysql -e \"IDENTIFIED BY '{secrets['keystone_dbpass']}'\"",),
                files=(FileSpec("/etc/x.conf", f"password = {secrets['swift_pass']}\n", 0o640),),
                check=f"test {secrets['admin_pass']}")
    text = Plan((step,)).to_json(secrets)
    assert all(value not in text for value in secrets.values.values())
    assert text.count(MASK) == 3
    assert secrets["admin_pass"] not in repr(secrets)


@pytest.mark.parametrize("value", ["", "a", 12345678, None, "has space in it", "x" * 300])
def test_a_value_that_would_corrupt_masking_is_refused(value):
    # "" would put ******** between every character of every line; "a" would mask every a.
    with pytest.raises(ValueError):
        Secrets({"admin_pass": value})


def test_masking_leaves_text_without_secrets_alone():
    secrets = Secrets({"admin_pass": "0123456789abcdef", "demo_pass": "fedcba9876543210"})
    assert secrets.mask("keystone-manage bootstrap --bootstrap-password 0123456789abcdef") == (
        f"keystone-manage bootstrap --bootstrap-password {MASK}")
    assert secrets.mask("apt-get install -y keystone") == "apt-get install -y keystone"


def test_no_database_root_password_is_generated(paths):
    ensure_secrets(paths, print, hosts_exist=no_hosts)
    assert "mysql_root_pass" not in paths.secrets.read_text()


def test_an_older_file_with_a_database_root_password_loads_unchanged(paths):
    ensure_secrets(paths, print, hosts_exist=no_hosts)
    older = paths.secrets.read_text() + "mysql_root_pass: 0123456789abcdef0123456789abcdef\n"
    paths.secrets.write_text(older)
    secrets = load_secrets(paths.secrets, print)
    assert paths.secrets.read_text() == older  # nothing added, nothing dropped
    assert secrets.mask("root 0123456789abcdef0123456789abcdef") == f"root {MASK}"  # still never shown


def _older_file(paths: LabPaths) -> dict[str, str]:
    """secrets.yaml as a version of the lab before swift_sync_realm_key wrote it."""
    older = {name: value for name, value in generate().values.items() if name != "swift_sync_realm_key"}
    paths.ensure(print)
    paths.secrets.write_text(yaml.safe_dump(older))
    os.chmod(paths.secrets, 0o600)
    return older


def test_lab_up_adds_a_name_a_newer_version_needs_and_keeps_every_value(paths):
    older, lines = _older_file(paths), []
    secrets = ensure_secrets(paths, lines.append, hosts_exist=lambda: True)
    assert {k: v for k, v in secrets.values.items() if k in older} == older
    assert len(secrets["swift_sync_realm_key"]) == 32
    assert yaml.safe_load(paths.secrets.read_text()) == secrets.values and mode(paths.secrets) == 0o600
    assert lines == [f"{paths.secrets}: added swift_sync_realm_key (this version of the lab needs it; "
                     f"every other value kept)"]
    assert ensure_secrets(paths, lines.append, hosts_exist=lambda: True).values == secrets.values  # once


def test_other_commands_ask_for_that_lab_up_in_one_line_and_change_nothing(paths):
    older = _older_file(paths)
    before = paths.secrets.read_bytes()
    with pytest.raises(StateFileError, match=r"has no swift_sync_realm_key .*run `lab up` once, it adds it"):
        load_secrets(paths.secrets, print)
    assert paths.secrets.read_bytes() == before and set(older) < set(SECRET_NAMES)
