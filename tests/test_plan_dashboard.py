"""The dashboard's plan (bootstrap/components/dashboard.py): the guide's local_settings keys as
Horizon reads them, a default role the lab has, Horizon under the front door's /dashboard (never
on port 80), a second install that sends nothing, and no dashboard in a TempAuth lab."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import urlparse

import pytest
from plan_fixtures import actions, converged, fresh_commands, inventory, plan_for, planned, sh, step_named  # noqa: F401

from bootstrap.actions import Command, FileSpec, OpenStack, Packages
from bootstrap.components import dashboard
from bootstrap.components.swift_proxy import OPERATOR_ROLES
from bootstrap.decide import Context, decide_step, facts_for
from bootstrap.planner import build_plan
from labcore.front_door import front_door
from labcore.secrets import generate


def _step(plan, name: str = "dashboard"):
    return step_named(plan, name, "controller")


def _both(plan) -> list:
    """The dashboard's two steps' actions, in plan order (dashboard-packages, then dashboard)."""
    return [*_step(plan, "dashboard-packages").actions, *_step(plan).actions]


def _settings(ctx, plan) -> dict:
    """The lab's snippet as Horizon's settings.py runs it: exec'd in the settings' namespace, after
    the package's own snippets (Debian's set WEBROOT "/" and a local-memory cache)."""
    snippet = next(a for a in _both(plan) if isinstance(a, FileSpec) and a.path == dashboard.layout(ctx).settings)
    namespace = {"HORIZON_CONFIG": {"user_home": "openstack_dashboard.views.get_user_home"}}
    exec('WEBROOT = "/"\nCACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}',
         namespace)
    exec(snippet.content, namespace)  # noqa: S102 - the text the lab writes, as Horizon execs it
    return namespace


def test_the_settings_are_the_guides_keys(planned):
    ctx, plan = planned
    s = _settings(ctx, plan)
    assert s["OPENSTACK_HOST"] == "controller"
    assert s["OPENSTACK_KEYSTONE_URL"] == "http://controller:5000/v3"
    assert s["SESSION_ENGINE"] == "django.contrib.sessions.backends.cache"
    assert s["CACHES"]["default"] == {"BACKEND": "django.core.cache.backends.memcached.MemcachedCache",
                                      "LOCATION": "controller:11211"}
    assert s["OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT"] is True
    assert s["OPENSTACK_API_VERSIONS"]["identity"] == 3
    assert s["OPENSTACK_KEYSTONE_DEFAULT_DOMAIN"] == "Default"
    assert s["TIME_ZONE"] == "UTC"
    # Horizon on the controller talks to the services over the internal endpoints, not the door.
    assert s["OPENSTACK_ENDPOINT_TYPE"] == "internalURL"


def test_cookies_are_https_only_and_every_user_lands_on_containers(planned):
    ctx, plan = planned
    s = _settings(ctx, plan)
    assert s["CSRF_COOKIE_SECURE"] is True and s["SESSION_COOKIE_SECURE"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert s["HORIZON_CONFIG"]["user_home"] == "/dashboard/project/containers/"


def test_allowed_hosts_name_the_front_door_and_the_controller(planned):
    ctx, plan = planned
    hosts = _settings(ctx, plan)["ALLOWED_HOSTS"]
    assert front_door(ctx.inventory).host in hosts and "controller" in hosts
    assert "*" not in hosts


def test_allowed_hosts_on_aws_name_the_public_dns_name_and_address():
    inv = inventory("ubuntu-18.04")
    node = inv.nodes[0].model_copy(update={"public_dns": "ec2-3-35-1-2.ap-northeast-2.compute.amazonaws.com",
                                           "public_ip": "3.35.1.2"})
    inv = inv.model_copy(update={"nodes": [node, *inv.nodes[1:]]})
    plan = build_plan(inv, generate())
    ctx = dashboard.PlanContext.for_inventory(inv, generate())
    hosts = _settings(ctx, plan)["ALLOWED_HOSTS"]
    assert hosts[:2] == ["ec2-3-35-1-2.ap-northeast-2.compute.amazonaws.com", "3.35.1.2"]


def test_the_default_role_is_one_the_lab_creates_not_the_guides_user(planned):
    ctx, plan = planned
    role = _settings(ctx, plan)["OPENSTACK_KEYSTONE_DEFAULT_ROLE"]
    assert role != "user"
    created = {a.argv[-1] for s in plan.steps for a in actions(s, OpenStack) if a.argv[:2] == ("role", "create")}
    assert role in created
    assert role in OPERATOR_ROLES.split(",")  # a user made in the dashboard may use the containers


def test_horizon_is_served_under_the_front_doors_dashboard_path(planned):
    ctx, plan = planned
    s = _settings(ctx, plan)
    webroot = urlparse(front_door(ctx.inventory).dashboard_url).path
    assert s["WEBROOT"] == webroot == "/dashboard/"
    assert (s["LOGIN_URL"], s["LOGOUT_URL"], s["STATIC_URL"]) == (
        "/dashboard/auth/login/", "/dashboard/auth/logout/", "/dashboard/static/")
    conf = next(a for a in actions(_step(plan), FileSpec) if a.path == "/etc/apache2/lab-front-door/dashboard.conf")
    lines = conf.content.splitlines()
    script = dashboard.layout(ctx).wsgi_script
    assert f"WSGIScriptAlias /dashboard {script} process-group=horizon application-group=%{{GLOBAL}}" in lines
    assert "Alias /dashboard/static /var/lib/openstack-dashboard/static" in lines
    assert "WSGIApplicationGroup %{GLOBAL}" in lines  # the guide's step 3
    assert "RedirectMatch 302 ^/$ /dashboard/" in lines  # the door's bare address leads to the dashboard
    # within the front door's vhost: no port, no vhost, no listener of its own
    assert not re.search(r"Listen|VirtualHost|:80\b", conf.content)
    processes = re.search(r"WSGIDaemonProcess horizon .*processes=(\d+) threads=(\d+)", conf.content)
    assert processes and int(processes[1]) <= 2


def test_the_lab_snippet_is_read_after_debians_own(planned):
    ctx, _ = planned
    snippet = dashboard.layout(ctx).settings
    assert "/local_settings.d/" in snippet
    debian = ["_0001_debian_debug.py", "_0005_debian_webroot.py", "_0006_debian_cache.py"]
    assert sorted([*debian, snippet.rsplit("/", 1)[1]])[-1] == snippet.rsplit("/", 1)[1]


def test_the_packages_port_80_configuration_stays_off():
    commands = fresh_commands(_step(plan_for("ubuntu-18.04")[1]))
    assert "a2disconf -q openstack-dashboard" in commands
    # Debian's port-80 configuration is another package, which the lab does not install.
    debian, plan = plan_for("debian-12")
    assert not any("-apache" in p for p in debian.profile.dashboard_packages)
    assert not any("a2disconf" in c for c in fresh_commands(_step(plan)))


def test_a_fresh_controller_compresses_for_the_new_urls_and_reloads_apache(planned):
    _, plan = planned
    commands = fresh_commands(_step(plan))
    compress = next(c for c in commands if "manage.py compress --force" in c)
    reload_ = next(c for c in commands if c.startswith("systemctl reload-or-restart apache2"))
    assert commands.index(compress) < commands.index(reload_)


def test_a_second_install_sends_nothing_for_the_dashboard(planned):
    _, plan = planned
    host = converged(plan, "controller")
    for step in (_step(plan, "dashboard-packages"), _step(plan)):
        answers = host.ask([f for a in step.actions for f in facts_for(a)])
        assert decide_step(step.actions, answers, Context()).sends == (), step.name


def test_a_tempauth_lab_has_no_dashboard():
    inv = inventory("debian-12").model_copy(update={"auth": "tempauth"})
    plan = build_plan(inv, generate())
    assert "dashboard" not in {s.name for s in plan.steps}
    assert not [a for s in plan.steps for a in actions(s, FileSpec) if "dashboard" in a.path]
    assert not [a for s in plan.steps for a in actions(s, Command) if "apache2" in " ".join(a.run)]


def test_debian_12_installs_horizon_23_with_python_3s_mod_wsgi():
    ctx, _ = plan_for("debian-12")
    assert set(ctx.profile.dashboard_packages) == {"python3-django-horizon", "openstack-dashboard",
                                                   "libapache2-mod-wsgi-py3"}
    assert set(ctx.profile.dashboard_packages) <= set(ctx.profile.packages_for("controller"))
    assert not set(ctx.profile.dashboard_packages) & set(ctx.profile.packages_for("object"))


@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_the_dashboard_step_runs_on_the_controller_once_keystone_is_up(os_name):
    _, plan = plan_for(os_name)
    names = [s.name for s in plan.for_host("controller")]
    assert names.index("keystone-service") < names.index("dashboard-packages") < names.index("dashboard")
    assert all(not s.name.startswith("dashboard") for node in ("object1", "object2") for s in plan.for_host(node))


@pytest.mark.parametrize("fix", dashboard.LAYOUTS["debian-12"].fixes, ids=lambda f: f.files[0].rsplit("/", 1)[1])
@pytest.mark.parametrize("collected", [True, False], ids=["collected", "not-yet-collected"])
def test_an_upstream_fix_changes_the_packaged_line_once(fix, collected, tmp_path):
    """The sed the lab sends, run on files holding the packaged line: upstream's line after it,
    and the check then says done (a second install sends nothing). Before openstack-dashboard is
    installed, the JavaScript's collected copy is not there yet: the fix goes to the file it is
    collected from, and the check is satisfied by it."""
    files = []
    for i, _ in enumerate(fix.files):
        f = tmp_path / f"copy{i}"
        if i == 0 or collected:
            f.write_text(f"    before\n        {fix.old}\n    after\n")
        files.append(str(f))
    local = dataclasses.replace(fix, files=tuple(files))
    command = dashboard._fix(local)
    assert sh(command.unless).returncode != 0  # not done yet
    assert sh(command.run[0]).returncode == 0
    for f in files[:None if collected else 1]:
        assert open(f).read() == f"    before\n        {fix.new}\n    after\n"
    assert sh(command.unless).returncode == 0


def test_a_fix_reaches_what_reads_it():
    """The JavaScript fix is in the compress's inputs (it is bundled then), every fix in the reload's."""
    _, plan = plan_for("debian-12")
    ordered = [c for c in _both(plan) if isinstance(c, Command)]
    commands = {c.what: c for c in ordered if c.what}
    compress = next(c for w, c in commands.items() if w.startswith("compress"))
    reload_ = next(c for w, c in commands.items() if w.startswith("reload"))
    for fix in dashboard.LAYOUTS["debian-12"].fixes:
        for f in fix.files:
            assert (f in compress.unless) == fix.bundled, f
            assert f in reload_.unless
    names = [c.what for c in ordered]
    assert max(i for i, w in enumerate(names) if w.startswith("apply upstream")) < names.index(compress.what)
    assert not dashboard.LAYOUTS["ubuntu-18.04"].fixes  # Rocky's Horizon and keystoneauth have neither bug


def test_the_dashboard_is_set_up_beside_keystone_and_finalize_waits_for_it():
    """Its ~10 s compress needs the door, not Keystone: off the install's critical path."""
    from bootstrap.plan import PHASE_NEEDS, phases_needed

    assert PHASE_NEEDS["dashboard"] == ("front-door",)
    assert "dashboard" not in phases_needed("keystone") | phases_needed("swift-proxy")
    assert "dashboard" in phases_needed("finalize")


@pytest.mark.parametrize(("fails", "ok", "calls"), [(0, True, 1), (2, True, 3), (3, False, 3)])
def test_compress_is_tried_up_to_three_times(planned, tmp_path, fails, ok, calls):
    """pyScss under compress failed once in CI on a template it parsed the next time; a third
    failure in a row is the step's."""
    import subprocess

    _, plan = planned
    compress = next(c for c in actions(_step(plan), Command) if "compress --force" in c.run[0]).run[0]
    count = tmp_path / "calls"
    fake = tmp_path / "manage.py"
    fake.write_text(f"#!/bin/sh\nn=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}; "
                    f"[ $n -gt {fails} ]\n")
    fake.chmod(0o755)
    done = subprocess.run(["sh", "-c", compress.replace(dashboard.MANAGE, str(fake))], check=False)
    assert (done.returncode == 0) is ok
    assert int(count.read_text()) == calls


def test_openstack_dashboard_is_installed_after_the_settings_and_fixes_it_compresses_for(planned):
    """Its postinst's compress then reads the lab's settings and bundles the fixed JavaScript: the
    only compress a fresh controller runs. Horizon's code comes earlier, with the service packages,
    so that the fix has its file to change."""
    ctx, plan = planned
    step = _step(plan, "dashboard-packages")
    kinds = [type(a).__name__ for a in step.actions]
    install = next(a for a in step.actions if isinstance(a, Packages))
    assert install.names == ("openstack-dashboard",) and install.nice > 0
    assert kinds.index("FileSpec") < kinds.index("Packages") == len(kinds) - 1
    service = set(ctx.profile.service_packages("controller"))
    assert "openstack-dashboard" not in service
    for fix in dashboard.layout(ctx).fixes:
        assert fix.files[0].startswith("/usr/lib/python3/dist-packages/")
    assert ctx.profile.name != "debian-12" or "python3-django-horizon" in service  # the JavaScript fix's file


@pytest.mark.parametrize(("touched", "fresh"), [
    ((), True),  # the postinst compressed after the settings and the fixes were written
    (("settings",), False),  # the settings changed since
    (("collected",), False),  # a fix reached the collected copy since (a lab made before the fix)
])
def test_compress_runs_only_when_an_input_is_newer_than_the_last_compress(planned, tmp_path, touched, fresh):
    """The compress's check, run in sh on files with the times a host would give them."""
    import os
    import time

    ctx, plan = planned
    compress = next(c for c in actions(_step(plan), Command) if "compress --force" in c.run[0])
    inputs = dashboard._fixed_files(ctx, bundled=True)
    if "collected" in touched and not inputs:
        pytest.skip("no bundled fix on this OS")
    files = {"settings": tmp_path / "settings.py", "library": tmp_path / "lib.js", "collected": tmp_path / "static.js"}
    manifest = tmp_path / "manifest.json"
    check = compress.unless.replace(dashboard.MANIFEST, str(manifest)).replace(dashboard.layout(ctx).settings,
                                                                              str(files["settings"]))
    for name, path in zip(("library", "collected"), inputs):
        check = check.replace(path, str(files[name]))
    assert sh(check).returncode != 0  # nothing compressed yet
    past = time.time() - 60
    for f in files.values():
        f.write_text("x")
        os.utime(f, (past, past))
    manifest.write_text("{}")
    for name in touched:
        files[name].write_text("y")
    assert (sh(check).returncode == 0) is fresh
