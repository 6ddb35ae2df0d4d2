"""The openrc files under .lab/<name>/ are for the user's machine; the controller's stay the guide's.

The same domain, project, user and password as the guide's, with the front door's HTTPS URL,
the public interface and the lab's CA: what `openstack` and `swift` need on a laptop. Shown to
a person, the password is masked.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from plan_fixtures import file_on, inventory, plan_for

from bootstrap.components.keystone import openrc as guide_openrc
from lab.commands.install import _write_rc_files
from lab.laptop_openrc import guide_login, laptop_openrc, masked, read_rc
from labcore.front_door import front_door
from labcore.paths import LabPaths
from labcore.secrets import MASK, generate

PUBLIC_DNS = "ec2-3-35-1-2.ap-northeast-2.compute.amazonaws.com"


def aws_inventory():
    """The guide's layout as `lab up` records it on AWS: the controller's public address and DNS name."""
    inv = inventory()
    controller = inv.controller.model_copy(update={"public_ip": "3.35.1.2", "public_dns": PUBLIC_DNS})
    return inv.model_copy(update={"nodes": [controller, *inv.nodes[1:]]})


@pytest.mark.parametrize("which, user, project", [("admin", "admin", "admin"), ("demo", "myuser", "myproject")])
def test_the_laptop_openrc_is_the_guides_through_the_front_door(tmp_path, which, user, project):
    secrets, inv = generate(), aws_inventory()
    values = read_rc(laptop_openrc(inv, secrets, which, tmp_path / "ca.pem"))
    guide = read_rc(guide_openrc(inv, secrets, which))
    assert guide["OS_AUTH_URL"] == "http://controller:5000/v3"
    assert {k: v for k, v in values.items() if k in guide and k != "OS_AUTH_URL"} == {
        k: v for k, v in guide.items() if k != "OS_AUTH_URL"}
    assert (values["OS_USERNAME"], values["OS_PROJECT_NAME"], values["OS_USER_DOMAIN_NAME"]) == (user, project,
                                                                                               "Default")
    assert values["OS_AUTH_URL"] == f"https://{PUBLIC_DNS}/identity/v3" == front_door(inv).identity_url
    assert values["OS_INTERFACE"] == "public"
    assert values["OS_CACERT"] == str(tmp_path / "ca.pem") and Path(values["OS_CACERT"]).is_absolute()
    assert values["OS_PASSWORD"] == secrets[f"{which}_pass"]


def test_a_shell_that_sources_it_has_exactly_these_values(tmp_path):
    secrets = generate()
    path = tmp_path / "demo-openrc"
    path.write_text(laptop_openrc(aws_inventory(), secrets, "demo", tmp_path / "a folder" / "ca.pem"))
    shown = subprocess.run(["bash", "-c", f"source '{path}'; env"], capture_output=True, text=True, check=True,
                           env={"PATH": os.environ["PATH"]}).stdout
    env = dict(line.split("=", 1) for line in shown.splitlines() if line.startswith("OS_"))
    assert env == read_rc(path.read_text())
    assert env["OS_CACERT"] == str(tmp_path / "a folder" / "ca.pem")


def test_the_controllers_openrc_stays_the_guides():
    ctx, plan = plan_for()
    for which in ("admin", "demo"):
        on_controller = file_on(plan, "controller", f"/root/{which}-openrc")
        assert on_controller == guide_openrc(ctx.inventory, ctx.secrets, which)
        assert "OS_CACERT" not in on_controller and "OS_INTERFACE" not in on_controller


def test_install_writes_the_laptop_files_0600_naming_the_labs_ca(tmp_path):
    paths = LabPaths(tmp_path / "rocky-lab")
    paths.root.mkdir()
    secrets, inv = generate(), aws_inventory()
    line = _write_rc_files(paths, inv, secrets)
    assert line == f"openrc files: {paths.openrc('admin')}, {paths.openrc('demo')} (mode 0600)"
    for which in ("admin", "demo"):
        assert stat.S_IMODE(os.stat(paths.openrc(which)).st_mode) == 0o600
        assert paths.openrc(which).read_text() == laptop_openrc(inv, secrets, which, paths.ca_cert)
        assert read_rc(paths.openrc(which).read_text())["OS_CACERT"] == str(paths.root / "ca.pem")
    assert not list(paths.root.glob("*-swiftrc"))


def test_masked_hides_every_password_and_nothing_else(tmp_path):
    secrets = generate()
    text = laptop_openrc(aws_inventory(), secrets, "admin", tmp_path / "ca.pem")
    shown = masked(text)
    assert secrets["admin_pass"] not in shown and f"export OS_PASSWORD={MASK}\n" in shown
    assert shown.replace(MASK, secrets["admin_pass"]) == text
    swiftrc = "export ST_AUTH=http://controller:8080/auth/v1.0\nexport ST_USER=admin:admin\nexport ST_KEY=s3cret-s3cret\n"
    assert masked(swiftrc) == swiftrc.replace("s3cret-s3cret", MASK)


def test_the_login_names_the_user_and_the_secrets_key_never_the_password():
    assert guide_login(inventory(), "demo") == guide_login(aws_inventory(), "demo")
    demo, admin = guide_login(inventory(), "demo"), guide_login(inventory(), "admin")
    assert (demo.domain, demo.user, demo.project, demo.secret) == ("Default", "myuser", "myproject", "demo_pass")
    assert (admin.domain, admin.user, admin.project, admin.secret) == ("Default", "admin", "admin", "admin_pass")
