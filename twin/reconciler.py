"""Make the host's instance bodies match the EC2 API's state, one pass at a time.

`Reconciler.reconcile` compares what the API asks for (twin/desired.py) with what the body
layer says exists and asks it for the difference only; an error in one body is logged and
retried on a later pass without holding up the others. It also carries what the API's
state alone does not show:

- RebootInstances leaves no trace in the API's state: the server hands the ids over
  (`request_reboot`), and the next pass asks those bodies to reboot.
- What a body does by itself (the layer's `ended`): a reboot boots it again on the same
  disk; a poweroff is an instance-initiated shutdown, which `on_shutdown` reports to the API
  (stop or terminate, by the instance's shutdown behaviour), as EC2 does; a container that
  died otherwise is left as it is, as a crashed host stays "running" on EC2.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from twin.desired import Observed
from twin.model import BodyLayer, InstanceBody

log = logging.getLogger(__name__)

RETRY_SECONDS = (2.0, 5.0, 15.0, 30.0)


@dataclass
class PassReport:
    """What one pass changed and what failed (failures are retried on a later pass)."""

    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)  # bodies removed (their instance is gone)
    powered_off: list[str] = field(default_factory=list)  # bodies kept powered off (instance stopped)
    rebooting: list[str] = field(default_factory=list)  # asked to reboot (RebootInstances)
    shut_down: list[str] = field(default_factory=list)  # instance-initiated shutdowns told to the API
    volumes_synced: list[str] = field(default_factory=list)
    volumes_pruned: list[str] = field(default_factory=list)
    firewall_applied: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.started or self.stopped or self.powered_off or self.rebooting or self.shut_down
                    or self.volumes_synced or self.volumes_pruned or self.firewall_applied)


def _firewall_key(bodies: list[InstanceBody]) -> tuple:
    return tuple(sorted((b.instance_id, b.private_ip, b.ingress) for b in bodies))


class Reconciler:
    """Remembers, across passes, the firewall it applied, which actions failed lately, and
    what bodies did or were asked to do that the API's state does not show.

    The firewall is re-applied on the first pass of a new daemon (the ruleset on disk may
    predate it) and whenever the bodies' addresses or ingress rules change. A failing
    action waits a little longer before each retry so that a broken body does not fill
    the log every second.
    """

    def __init__(self, layer: BodyLayer, clock=time.monotonic,
                 on_shutdown: Callable[[InstanceBody], str] | None = None):
        self.layer = layer
        self.clock = clock
        self.on_shutdown = on_shutdown or (lambda body: "not told: no API")
        self._firewall: tuple | None = None
        self._failures: dict[str, tuple[int, float]] = {}  # action key -> (failures, next try)
        self._lock = threading.Lock()
        self._reboots: set[str] = set()  # asked through the API, not yet passed to the layer
        self._to_boot: set[str] = set()  # rebooted bodies to boot again
        self._shutdowns: set[str] = set()  # powered off by themselves; the API not told yet

    def request_reboot(self, instance_ids: Iterable[str]) -> None:
        """RebootInstances went through for these (called from the server's thread)."""
        with self._lock:
            self._reboots.update(instance_ids)

    def reconcile(self, desired: list[InstanceBody] | Observed) -> PassReport:
        observed = desired if isinstance(desired, Observed) else Observed(list(desired))
        report = PassReport()
        current = self.layer.bodies()
        wanted = {b.instance_id: b for b in observed.bodies}
        running = [b for b in observed.bodies if b.running]
        broken_subnets = self._networks(running, report)
        for instance_id in sorted(set(current) - set(wanted)):
            if self._try(f"stop {instance_id}", _describe(current[instance_id]), report,
                         lambda i=instance_id: self.layer.stop(i)):
                report.stopped.append(instance_id)
                self._forget(instance_id)
        self._what_bodies_did(current, wanted, report)
        self._asked_reboots(current, wanted, report)
        for body in observed.bodies:
            if body.subnet_cidr not in broken_subnets or not body.running:
                self._one(body, current.get(body.instance_id), report)
        self._apply_firewall(running, report)
        if isinstance(desired, Observed):
            self._try("prune volumes", f"{len(observed.volume_ids)} volumes in the API", report,
                      lambda: report.volumes_pruned.extend(self.layer.prune_volumes(observed.volume_ids)), quiet=True)
        return report

    def _one(self, body: InstanceBody, have: InstanceBody | None, report: PassReport) -> None:
        iid = body.instance_id
        if body.running and (have is None or not have.running or iid in self._to_boot):
            if self._try(f"start {iid}", _describe(body), report, lambda: self.layer.start(body)):
                report.started.append(iid)
                self._to_boot.discard(iid)
        elif not body.running and have is not None and have.running:
            if self._try(f"power off {iid}", _describe(body), report, lambda: self.layer.power_off(body)):
                report.powered_off.append(iid)
                self._to_boot.discard(iid)
        elif have is not None and have.volumes != body.volumes:
            if self._try(f"sync volumes of {iid}", _describe(body), report, lambda: self.layer.sync_volumes(body)):
                report.volumes_synced.append(iid)

    def _what_bodies_did(self, current: dict, wanted: dict, report: PassReport) -> None:
        for iid, how in sorted(self.layer.ended().items()):
            if iid not in current or iid not in wanted:
                continue
            if how == "reboot":
                log.info("%s rebooted: booting it again on the same disk and volumes", iid)
                self._to_boot.add(iid)
            elif how == "poweroff":
                log.info("%s powered itself off: an instance-initiated shutdown", iid)
                self._shutdowns.add(iid)
            else:
                log.warning("the container of %s ended (%s): left as it is, as a crashed host stays running on "
                            "EC2; `lab down` removes it", iid, how)
        for iid in sorted(self._shutdowns):
            body = wanted.get(iid)
            if body is None or not body.running:  # the API knows already
                self._shutdowns.discard(iid)
                continue
            outcome: list[str] = []
            if self._try(f"shutdown {iid}", _describe(body), report,
                         lambda b=body, said=outcome: said.append(self.on_shutdown(b))):
                report.shut_down.append(f"{iid} {outcome[0]}")
                self._shutdowns.discard(iid)

    def _asked_reboots(self, current: dict, wanted: dict, report: PassReport) -> None:
        with self._lock:
            asked, self._reboots = self._reboots, set()
        for iid in sorted(asked):
            body, have = wanted.get(iid), current.get(iid)
            if body is None or have is None or not (body.running and have.running):
                continue  # no running body to reboot (EC2 ignores a reboot of a stopped instance too)
            if self._try(f"reboot {iid}", _describe(body), report, lambda i=iid: self.layer.reboot(i)):
                report.rebooting.append(iid)

    def _forget(self, instance_id: str) -> None:
        self._to_boot.discard(instance_id)
        self._shutdowns.discard(instance_id)

    def _networks(self, running: list[InstanceBody], report: PassReport) -> set[str]:
        broken = set()
        for cidr in sorted({b.subnet_cidr for b in running}):
            if not self._try(f"network {cidr}", "bridge, NAT and forwarding", report,
                             lambda c=cidr: self.layer.ensure_network(c), quiet=True):
                broken.add(cidr)
        return broken

    def _apply_firewall(self, running: list[InstanceBody], report: PassReport) -> None:
        key = _firewall_key(running)
        if key == self._firewall:
            return
        if self._try("firewall", f"{len(running)} bodies", report, lambda: self.layer.apply_firewall(running)):
            self._firewall = key
            report.firewall_applied = True

    def _try(self, action: str, what: str, report: PassReport, call, quiet: bool = False) -> bool:
        """Run one action unless it is backing off after a failure; record the outcome (quiet:
        success is not logged, for what every pass does)."""
        failures, next_try = self._failures.get(action, (0, 0.0))
        now = self.clock()
        if now < next_try:
            report.errors.append(f"{action}: waiting to retry after {failures} failures")
            return False
        try:
            call()
        except Exception as exc:  # one body's failure must not stop the others; retried later
            wait = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            self._failures[action] = (failures + 1, now + wait)
            log.error("%s failed (%s); retrying in %.0f s: %s", action, what, wait, exc,
                      exc_info=failures == 0)
            report.errors.append(f"{action}: {exc}")
            return False
        self._failures.pop(action, None)
        if not quiet:
            log.info("%s: done (%s)", action, what)
        return True


def _describe(body: InstanceBody) -> str:
    return f"{body.instance_id} lab {body.lab} host {body.hostname} {body.private_ip}"


def reconcile(layer: BodyLayer, desired: list[InstanceBody] | Observed) -> PassReport:
    """One pass with no memory of earlier ones (the firewall is applied)."""
    return Reconciler(layer).reconcile(desired)
