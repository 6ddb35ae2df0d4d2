"""The lab's Swift serves the whole API Tempest tests (issue 22): Swift's sample pipeline with
keystone, versioned writes, container sync in one realm; the guide's exact pipeline one key away."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plan_fixtures import file_on, ini, plan_for, step_named

from bootstrap.components import finalize, swift_proxy, tempauth
from bootstrap.profiles import DEBIAN_12
from bootstrap.report import render_shell
from labcore.secrets import MASK

PROXY = "/etc/swift/proxy-server.conf"
REALMS = "/etc/swift/container-sync-realms.conf"
FILTERS = json.loads((Path(__file__).parent / "data" / "swift_filters.json").read_text())["tags"]
# Swift 2.19.0's (Rocky's) etc/proxy-server.conf-sample pipeline, word for word (2.30.0's is the same).
SAMPLE = ("catch_errors gatekeeper healthcheck proxy-logging cache listing_formats container_sync bulk tempurl "
          "ratelimit tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging "
          "proxy-server").split()


@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_the_default_pipeline_is_swifts_sample_with_keystone_and_devstacks_three(os_name):
    pipeline = ini(file_on(plan_for(os_name)[1], "controller", PROXY))["pipeline:main"]["pipeline"].split()
    without_extras = [p for p in pipeline if p not in ("crossdomain", "formpost", "staticweb")]
    at = SAMPLE.index("tempauth")
    assert without_extras == [*SAMPLE[:at], "authtoken", "keystoneauth", *SAMPLE[at + 1:]]
    # crossdomain before the auth, formpost and staticweb right after it (DevStack's places)
    assert pipeline.index("crossdomain") < pipeline.index("authtoken")
    assert pipeline[pipeline.index("keystoneauth") + 1:][:2] == ["formpost", "staticweb"]


@pytest.mark.parametrize("tag", sorted(FILTERS))
def test_every_filter_of_both_pipelines_is_an_entry_point_of_the_releases_swift(tag):
    for mode in ("full", "guide"):
        conf = ini(file_on(plan_for(swift_pipeline=mode)[1], "controller", PROXY))
        for name in conf["pipeline:main"]["pipeline"].split()[:-1]:
            use = conf[f"filter:{name}"].get("use", "")
            if use:
                assert use.removeprefix("egg:swift#") in FILTERS[tag]["filters"], (mode, name, use)


def test_versioned_writes_are_allowed_and_this_cluster_is_named_in_info():
    conf = ini(file_on(plan_for()[1], "controller", PROXY))
    assert conf["filter:versioned_writes"]["allow_versioned_writes"] == "true"
    assert conf["filter:container_sync"]["current"] == "//lab/lab1"


@pytest.mark.parametrize("os_name", ["ubuntu-18.04", "debian-12"])
def test_the_realms_file_names_this_cluster_with_the_labs_key_on_every_swift_node(os_name):
    ctx, plan = plan_for(os_name)
    for host in ("controller", "object1", "object2"):
        realms = ini(file_on(plan, host, REALMS))
        assert dict(realms["lab"]) == {"key": ctx.secrets["swift_sync_realm_key"],
                                       "cluster_lab1": "http://controller:8080/v1/"}
    spec = next(f for f in step_named(plan, "swift-proxy-config", "controller").files if f.path == REALMS)
    assert (spec.mode, spec.owner) == (0o640, "root:swift")


def test_the_realm_key_is_masked_in_the_plan(capsys):
    from rich.console import Console

    ctx, plan = plan_for()
    render_shell(plan, ctx.secrets, Console(width=400, color_system=None))
    shown = capsys.readouterr().out
    assert ctx.secrets["swift_sync_realm_key"] not in shown and MASK in shown


def test_containers_sync_every_30_s_and_the_daemon_runs_on_both_profiles():
    container = ini(file_on(plan_for()[1], "object1", "/etc/swift/container-server.conf"))
    assert container["container-sync"]["interval"] == "30"
    assert "swift-container-sync" in DEBIAN_12.swift_storage_services
    assert "container-sync" in finalize.STORAGE_DAEMONS  # swift-init's status on Ubuntu 18.04


def test_a_changed_realms_file_restarts_the_proxy_and_the_storage_servers():
    ctx, plan = plan_for("debian-12")
    for step, host in (("swift-proxy-start", "controller"), ("swift-storage-start", "object1")):
        service = [a for a in step_named(plan, step, host).actions if hasattr(a, "watch")][0]
        assert REALMS in service.watch


def test_the_guides_pipeline_is_exactly_the_guides():
    ctx, plan = plan_for(swift_pipeline="guide")
    conf = ini(file_on(plan, "controller", PROXY))
    assert "allow_versioned_writes" not in conf["filter:versioned_writes"]
    assert "current" not in conf["filter:container_sync"]
    assert not [f for s in plan.steps for f in s.files if f.path == REALMS]
    assert "interval" not in ini(file_on(plan, "object1", "/etc/swift/container-server.conf"))["container-sync"]


def test_reseller_admin_is_created_with_the_guides_entities():
    ctx, plan = plan_for()
    said = [a.says() for a in step_named(plan, "identity-entities", "controller").actions]
    assert "create the openstack role `ResellerAdmin` unless it exists" in said


def test_a_tempauth_lab_has_the_same_middleware_with_tempauth_in_keystones_place():
    assert tempauth.TEMPAUTH_PIPELINE == swift_proxy.with_auth(swift_proxy.PIPELINE, ("tempauth",))
    assert "tempurl" in tempauth.TEMPAUTH_PIPELINE and "keystoneauth" not in tempauth.TEMPAUTH_PIPELINE
