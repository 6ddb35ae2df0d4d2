"""The twin's reconciler: what a pass changes on the bodies, given the bodies the API wants."""

from __future__ import annotations

from dataclasses import replace

from twin.desired import Observed
from twin.model import IngressRule, InstanceBody, VolumeBody
from twin.reconciler import Reconciler, reconcile

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH2wSBYcsLEJXKOHd8E77T1vGsPDx7DI5kaoShyN1dtz lab"


# ------------------------------------------------------------------ reconcile passes
class FakeBodies:
    """A BodyLayer that keeps bodies in memory and records every call; `fail` makes calls raise."""

    def __init__(self, existing: dict[str, InstanceBody] | None = None):
        self.existing = dict(existing or {})
        self.calls: list[tuple] = []
        self.fail: set[tuple] = set()
        self.ends: dict[str, str] = {}  # what the containers did by themselves, for the next pass

    def _call(self, *call) -> None:
        self.calls.append(call)
        if call in self.fail:
            raise RuntimeError(f"boom in {call}")

    def ensure_network(self, subnet_cidr):
        self._call("ensure_network", subnet_cidr)

    def bodies(self):
        return dict(self.existing)

    def start(self, body):
        self._call("start", body.instance_id)
        self.existing[body.instance_id] = body

    def stop(self, instance_id):
        self._call("stop", instance_id)
        self.existing.pop(instance_id)

    def sync_volumes(self, body):
        self._call("sync_volumes", body.instance_id)
        self.existing[body.instance_id] = body

    def apply_firewall(self, bodies):
        self._call("apply_firewall", tuple(b.instance_id for b in bodies))

    def power_off(self, body):
        self._call("power_off", body.instance_id)
        self.existing[body.instance_id] = replace(body, running=False)

    def reboot(self, instance_id):
        self._call("reboot", instance_id)

    def ended(self):
        ended, self.ends = self.ends, {}
        return ended

    def prune_volumes(self, existing):
        self._call("prune_volumes", tuple(sorted(existing)))
        return []

    def host_public_keys(self, instance_id):
        return []

    def console_output(self, instance_id):
        return None

    def teardown_all(self):
        return []


def body(iid: str, ip: str, cidr: str = "172.31.0.0/20", volumes=(), ingress=()) -> InstanceBody:
    return InstanceBody(iid, "rocky-lab", iid, ip, cidr, "ubuntu", KEY, tuple(volumes), tuple(ingress))


def test_missing_bodies_are_started_on_their_network():
    layer = FakeBodies()
    desired = [body("i-a", "172.31.0.4"), body("i-b", "10.1.0.5", cidr="10.1.0.0/24")]
    report = reconcile(layer, desired)
    assert report.started == ["i-a", "i-b"] and not report.errors
    assert layer.calls == [("ensure_network", "10.1.0.0/24"), ("ensure_network", "172.31.0.0/20"),
                           ("start", "i-a"), ("start", "i-b"), ("apply_firewall", ("i-a", "i-b"))]


def test_body_of_terminated_instance_is_stopped():
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4"), "i-gone": body("i-gone", "172.31.0.9")})
    report = reconcile(layer, [body("i-a", "172.31.0.4")])
    assert report.stopped == ["i-gone"] and report.started == []
    assert set(layer.existing) == {"i-a"}


def test_attached_or_detached_volume_syncs_the_body():
    disk = VolumeBody("vol-1", 10, 1, "/dev/sdf")
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer)
    assert rec.reconcile([body("i-a", "172.31.0.4", volumes=[disk])]).volumes_synced == ["i-a"]
    assert rec.reconcile([body("i-a", "172.31.0.4", volumes=[disk])]).volumes_synced == []
    assert rec.reconcile([body("i-a", "172.31.0.4")]).volumes_synced == ["i-a"]
    assert layer.existing["i-a"].volumes == ()


def test_firewall_is_applied_again_only_when_rules_change():
    icmp = IngressRule("icmp", None, None, ("172.31.0.4/32",))
    layer = FakeBodies()
    rec = Reconciler(layer)
    assert rec.reconcile([body("i-a", "172.31.0.4", ingress=[icmp])]).firewall_applied
    second = rec.reconcile([body("i-a", "172.31.0.4", ingress=[icmp])])
    assert not second.firewall_applied and not second.changed
    assert rec.reconcile([body("i-a", "172.31.0.4")]).firewall_applied  # the ICMP rule was revoked
    assert [c for c in layer.calls if c[0] == "apply_firewall"] == [("apply_firewall", ("i-a",))] * 2


def test_a_failing_body_does_not_stop_the_others_and_is_retried_later():
    now = [0.0]
    layer = FakeBodies({"i-old": body("i-old", "172.31.0.9")})
    layer.fail = {("start", "i-a"), ("stop", "i-old")}
    rec = Reconciler(layer, clock=lambda: now[0])
    desired = [body("i-a", "172.31.0.4"), body("i-b", "172.31.0.5")]

    first = rec.reconcile(desired)
    assert first.started == ["i-b"] and first.firewall_applied
    assert any("start i-a" in e for e in first.errors) and any("stop i-old" in e for e in first.errors)

    layer.fail.clear()
    waiting = rec.reconcile(desired)  # backing off: not retried at once
    assert waiting.started == [] and ("start", "i-a") not in layer.calls[-3:]
    now[0] = 60.0
    retried = rec.reconcile(desired)
    assert retried.started == ["i-a"] and retried.stopped == ["i-old"] and not retried.errors


def test_a_broken_network_holds_back_only_its_own_bodies():
    layer = FakeBodies()
    layer.fail = {("ensure_network", "10.1.0.0/24")}
    report = reconcile(layer, [body("i-a", "172.31.0.4"), body("i-b", "10.1.0.5", cidr="10.1.0.0/24")])
    assert report.started == ["i-a"]
    assert ("start", "i-b") not in layer.calls


def test_a_failed_firewall_is_applied_again_on_a_later_pass():
    now = [0.0]
    layer = FakeBodies()
    layer.fail = {("apply_firewall", ("i-a",))}
    rec = Reconciler(layer, clock=lambda: now[0])
    assert not rec.reconcile([body("i-a", "172.31.0.4")]).firewall_applied
    layer.fail.clear()
    now[0] = 60.0
    assert rec.reconcile([body("i-a", "172.31.0.4")]).firewall_applied


def test_changed_body_keeps_its_identity():
    """Only volumes are synced in place: the same instance with new volumes is not restarted."""
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    reconcile(layer, [replace(body("i-a", "172.31.0.4"), volumes=(VolumeBody("vol-1", 1, 1, "/dev/sdf"),))])
    assert ("stop", "i-a") not in layer.calls and ("start", "i-a") not in layer.calls


# ------------------------------------------------------------------ what bodies do by themselves, and reboots
def starts(layer: FakeBodies) -> list[tuple]:
    return [c for c in layer.calls if c[0] == "start"]


def test_a_body_that_rebooted_is_booted_again_once():
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer)
    layer.ends = {"i-a": "reboot"}
    assert rec.reconcile([body("i-a", "172.31.0.4")]).started == ["i-a"]
    assert rec.reconcile([body("i-a", "172.31.0.4")]).started == []
    assert starts(layer) == [("start", "i-a")] and ("stop", "i-a") not in layer.calls


def test_a_reboot_through_the_api_reaches_only_running_bodies():
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4"), "i-b": replace(body("i-b", "172.31.0.5"), running=False)})
    rec = Reconciler(layer)
    rec.request_reboot(["i-a", "i-b", "i-unknown"])
    desired = [body("i-a", "172.31.0.4"), replace(body("i-b", "172.31.0.5"), running=False)]
    assert rec.reconcile(desired).rebooting == ["i-a"]
    assert rec.reconcile(desired).rebooting == []  # asked once, rebooted once
    assert [c for c in layer.calls if c[0] == "reboot"] == [("reboot", "i-a")]


def test_a_body_that_powered_off_is_an_instance_initiated_shutdown_told_to_the_api_once():
    told = []
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer, on_shutdown=lambda b: told.append(b.instance_id) or "terminated")
    layer.ends = {"i-a": "poweroff"}
    report = rec.reconcile([body("i-a", "172.31.0.4")])
    assert report.shut_down == ["i-a terminated"] and told == ["i-a"]
    assert rec.reconcile([body("i-a", "172.31.0.4")]).shut_down == []  # the API has not caught up yet: no repeat
    assert starts(layer) == []  # and the powered-off body is not booted again meanwhile
    assert rec.reconcile([]).stopped == ["i-a"]  # terminated: the body goes


def test_a_shutdown_the_api_refused_is_told_again_later():
    now, answers = [0.0], [RuntimeError("throttled"), "stopped"]

    def tell(b):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer, clock=lambda: now[0], on_shutdown=tell)
    layer.ends = {"i-a": "poweroff"}
    assert any("shutdown i-a" in e for e in rec.reconcile([body("i-a", "172.31.0.4")]).errors)
    now[0] = 60.0
    assert rec.reconcile([body("i-a", "172.31.0.4")]).shut_down == ["i-a stopped"]


def test_a_container_that_died_otherwise_is_left_as_it_is():
    told = []
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer, on_shutdown=lambda b: told.append(b) or "stopped")
    layer.ends = {"i-a": "died (systemd-nspawn exit 1)"}
    report = rec.reconcile([body("i-a", "172.31.0.4")])
    assert (report.started, report.stopped, report.shut_down, told, starts(layer)) == ([], [], [], [], [])


def test_a_stopped_instance_keeps_its_body_powered_off_and_a_start_boots_it():
    layer = FakeBodies({"i-a": body("i-a", "172.31.0.4")})
    rec = Reconciler(layer)
    stopped = replace(body("i-a", "172.31.0.4"), running=False)
    assert rec.reconcile([stopped]).powered_off == ["i-a"]
    assert rec.reconcile([stopped]).powered_off == [] and "i-a" in layer.existing
    assert rec.reconcile([body("i-a", "172.31.0.4")]).started == ["i-a"]


def test_a_stopped_body_is_not_in_the_firewall_nor_on_a_network():
    layer = FakeBodies({"i-b": replace(body("i-b", "10.1.0.5", cidr="10.1.0.0/24"), running=False)})
    reconcile(layer, [body("i-a", "172.31.0.4"), replace(body("i-b", "10.1.0.5", cidr="10.1.0.0/24"), running=False)])
    assert ("ensure_network", "10.1.0.0/24") not in layer.calls
    assert ("apply_firewall", ("i-a",)) in layer.calls


def test_volume_files_are_pruned_against_the_volumes_the_api_still_has():
    layer = FakeBodies()
    reconcile(layer, Observed([body("i-a", "172.31.0.4")], {"vol-1", "vol-2"}))
    assert ("prune_volumes", ("vol-1", "vol-2")) in layer.calls
