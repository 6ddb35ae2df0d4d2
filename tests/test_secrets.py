"""Secrets are generated once, kept 0600, and masked wherever text reaches a person."""

from __future__ import annotations

import stat

from bootstrap.plan import FileSpec, Plan, Step
from labcore.secrets import MASK, SECRET_NAMES, load_or_create


def test_secrets_are_generated_once_with_mode_0600(tmp_path):
    path = tmp_path / "secrets.yaml"
    first = load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(first.values) == set(SECRET_NAMES)
    assert len(set(first.values.values())) == len(SECRET_NAMES)  # no two alike
    assert load_or_create(path).values == first.values


def test_a_secret_missing_from_an_older_file_is_added_and_the_rest_kept(tmp_path):
    path = tmp_path / "secrets.yaml"
    path.write_text("admin_pass: keep-me-please\n")
    secrets = load_or_create(path)
    assert secrets["admin_pass"] == "keep-me-please"
    assert set(secrets.values) == set(SECRET_NAMES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_plan_output_masks_every_secret(tmp_path):
    secrets = load_or_create(tmp_path / "secrets.yaml")
    step = Step("keystone-db", "keystone", ("controller",),
                commands=(f"mysql -e \"IDENTIFIED BY '{secrets['keystone_dbpass']}'\"",),
                files=(FileSpec("/etc/x.conf", f"password = {secrets['swift_pass']}\n", 0o640),),
                check=f"test {secrets['admin_pass']}")
    text = Plan((step,)).to_json(secrets)
    assert all(value not in text for value in secrets.values.values())
    assert text.count(MASK) == 3
    assert secrets["admin_pass"] not in repr(secrets)


def test_no_database_root_password_is_generated(tmp_path):
    path = tmp_path / "secrets.yaml"
    load_or_create(path)
    assert "mysql_root_pass" not in path.read_text()


def test_an_older_file_with_a_database_root_password_loads_unchanged(tmp_path):
    path = tmp_path / "secrets.yaml"
    load_or_create(path)
    older = path.read_text() + "mysql_root_pass: 0123456789abcdef0123456789abcdef\n"
    path.write_text(older)
    secrets = load_or_create(path)
    assert path.read_text() == older  # nothing added, nothing dropped
    assert secrets.mask("root 0123456789abcdef0123456789abcdef") == f"root {MASK}"  # still never shown
