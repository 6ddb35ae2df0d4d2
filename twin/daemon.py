"""The twin's background process: the moto server plus the reconcile loop that gives instances bodies.

    python -m twin.daemon --state-dir DIR --region R [--bodies host|null]

It writes DIR/endpoint, DIR/daemon.pid and DIR/body-layer, logs to DIR/daemon.log and
reconciles every region listed in DIR/regions (clients append to it; twin/state.py). It
stops by itself when no lab is left: nothing in the API with a lab:name tag (an instance
that is not terminated, a volume, a security group, a key pair) and no body on disk, once
a lab has existed since the last client came by, or after an idle grace period. The API state lives only in this process's memory; what the bodies leave on
the host is on disk, so `lab down` can clean up even after this process died.

What the API's state does not show reaches the loop from both sides: the server hands
over RebootInstances and answers GetConsoleOutput from the bodies' consoles (twin/server.py),
and the body layer pokes the loop when a container ends by itself (twin/watch.py), so a
reboot or a poweroff is acted on within a second.

With real bodies (--bodies host) it also serves the instance metadata service
(twin/imds_server.py) on the gateway of every subnet with running bodies, and DHCP on the
bridge (twin/dhcp.py, dnsmasq), both from before the pass that boots them, so cloud-init in
a body gets its lease and finds the metadata on its first try.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from twin import netns, server, shutdown
from twin.desired import Observed, observe
from twin.dhcp import DhcpServer, Lease
from twin.errors import TwinStateError
from twin.imds_server import MetadataService, moto_lookup, remembered
from twin.layers import BODY_LAYERS, open_body_layer
from twin.model import BodyLayer, InstanceBody
from twin.reconciler import Reconciler
from twin.state import StateFiles

log = logging.getLogger("twin.daemon")

PASS_SECONDS = 1.0  # between passes while they still change something
# With no client request at all, a pass now and then still notices a body that died.
QUIET_PASS_SECONDS = 15.0
IDLE_GRACE_SECONDS = 60.0


class Daemon:
    def __init__(self, files: StateFiles, layer: BodyLayer, endpoint: str, idle_grace: float,
                 poked: threading.Event | None = None, host_bodies: bool = False):
        """host_bodies: the bodies are real hosts (--bodies host), which ask a VPC's services
        at boot: DHCP and the instance metadata service are then served."""
        self.files, self.layer, self.endpoint = files, layer, endpoint
        self.metadata = MetadataService(remembered(moto_lookup(self._region_clients))) if host_bodies else None
        self.dhcp = DhcpServer(netns.BRIDGE, files.root) if host_bodies else None
        self.idle_grace = idle_grace
        self.reconciler = Reconciler(layer, on_shutdown=self.instance_shut_down)
        self.stopping = threading.Event()
        self.poked = poked or threading.Event()  # set by the server after a client's request
        self.changed = False  # whether the last pass changed anything
        self._stamp = files.regions_stamp()
        self._since = time.monotonic()
        self._seen_lab = False
        self._clients: dict[str, object] = {}

    def run(self) -> None:
        """A pass; the next one a second later while passes change things, else as soon as a
        client's request may have changed the state. Polling the API every second instead
        cost a tenth of a core, taken from the lab's hosts on the same machine."""
        while not self.stopping.is_set():
            self.poked.clear()  # a request during the pass sets it again: one more pass
            if self.one_pass():
                log.info("no lab is left: stopping")
                return
            if self.changed:
                self.stopping.wait(PASS_SECONDS)
            else:
                self.poked.wait(QUIET_PASS_SECONDS)

    def stop(self) -> None:
        self.stopping.set()
        self.poked.set()

    def reboot_requested(self, instance_ids: list[str]) -> None:
        """From the server: RebootInstances went through for these."""
        self.reconciler.request_reboot(instance_ids)
        self.poked.set()

    def _client(self, region: str):
        if region not in self._clients:
            self._clients[region] = server.ec2_client(self.endpoint, region, reconciler=True)
        return self._clients[region]

    def _region_clients(self) -> list[tuple[object, str]]:
        return [(self._client(region), region) for region in self.files.read_regions()]

    def instance_shut_down(self, body: InstanceBody) -> str:
        """A body powered itself off: stop or terminate its instance, as EC2 would."""
        return shutdown.instance_initiated_shutdown(self._client(body.region), body.instance_id)

    def one_pass(self) -> bool:
        """Reconcile all regions; True when the daemon should stop because no lab is left."""
        observed = Observed()
        try:
            for region in self.files.read_regions():
                observed = observed.merge(observe(self._client(region)))
        except Exception as exc:  # without a full picture, changing nothing is the safe move
            log.error("could not read the EC2 state (%s); skipping this pass", exc)
            self.changed = True  # try again soon, not only after the next request
            return False
        if self.metadata is not None:
            self.metadata.serve_on({netns.gateway(b.subnet_cidr).split("/")[0] for b in observed.bodies if b.running})
        if self.dhcp is not None:
            self.dhcp.serve([Lease(b.mac, b.private_ip, b.subnet_cidr) for b in observed.bodies if b.running and b.mac])
        try:
            report = self.reconciler.reconcile(observed)
        except TwinStateError as exc:  # a damaged body.json: change nothing until `lab down` cleans up
            log.error("%s", exc)
            self.changed = False
            return False
        self.changed = report.changed or bool(report.errors)  # failed actions are retried soon
        if report.changed:
            log.info("pass: started %s, stopped %s, powered off %s, rebooting %s, shut down %s, volumes %s, "
                     "pruned %s, firewall %s", report.started, report.stopped, report.powered_off, report.rebooting,
                     report.shut_down, report.volumes_synced, report.volumes_pruned,
                     "applied" if report.firewall_applied else "unchanged")
        return self._nothing_left(bool(observed.bodies or observed.labs))

    def _nothing_left(self, lab_exists: bool) -> bool:
        stamp = self.files.regions_stamp()
        if stamp != self._stamp:  # a client came by: it may be about to create a lab
            self._stamp, self._since, self._seen_lab = stamp, time.monotonic(), False
        if lab_exists:
            self._seen_lab = True
            return False
        if self.layer.bodies():
            return False
        return self._seen_lab or time.monotonic() - self._since > self.idle_grace


def _setup_logging(files: StateFiles) -> None:
    handler = logging.FileHandler(files.log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twin.daemon", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--region", required=True)
    parser.add_argument("--bodies", choices=sorted(BODY_LAYERS), default="host")
    parser.add_argument("--idle-grace", type=float, default=IDLE_GRACE_SECONDS,
                        help="seconds to wait for a first lab before stopping")
    args = parser.parse_args(argv)
    files = StateFiles(args.state_dir.absolute())
    files.root.mkdir(parents=True, exist_ok=True)
    _setup_logging(files)
    poked = threading.Event()
    layer = open_body_layer(files.root, args.bodies, notify=poked.set)
    daemon: Daemon | None = None
    moto, endpoint = server.start_server(on_request=poked.set, console=layer.console_output,
                                         on_reboot=lambda ids: daemon.reboot_requested(ids) if daemon else None)
    daemon = Daemon(files, layer, endpoint, args.idle_grace, poked, host_bodies=args.bodies == "host")
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop())
    signal.signal(signal.SIGINT, lambda *_: daemon.stop())
    try:
        server.ensure_image(endpoint, args.region)
        files.add_region(args.region)
        files.body_layer.write_text(args.bodies + "\n")
        files.pid.write_text(f"{os.getpid()}\n")
        files.endpoint.write_text(endpoint + "\n")  # last: its presence means "ready"
        log.info("twin EC2 API at %s (pid %d, bodies %s, region %s)", endpoint, os.getpid(), args.bodies, args.region)
        daemon.run()
    finally:
        if daemon.metadata is not None:
            daemon.metadata.stop()
        if daemon.dhcp is not None:
            daemon.dhcp.stop()
        _shut_down(files, layer, moto)
    return 0


def _shut_down(files: StateFiles, layer: BodyLayer, moto) -> None:
    """Endpoint file first, so no client picks this daemon any more; then the host, then the API."""
    files.endpoint.unlink(missing_ok=True)
    try:
        for line in layer.teardown_all():
            log.info("teardown: %s", line)
    except Exception:
        log.exception("teardown of the twin failed; `lab down` cleans what is left")
        raise
    finally:
        moto.stop()
        files.remove_runtime_files()
        log.info("stopped")


if __name__ == "__main__":
    sys.exit(main())
