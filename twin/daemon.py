"""The twin's background process: the moto server plus the reconcile loop that gives instances bodies.

    python -m twin.daemon --state-dir DIR --region R [--bodies host|null]

It writes DIR/endpoint, DIR/daemon.pid and DIR/body-layer, logs to DIR/daemon.log and
reconciles every region listed in DIR/regions (clients append to it). It stops by itself
when no lab is left: no live instance with a lab:name tag and no body on disk, once a lab
has existed since the last client came by, or after an idle grace period. The API state
lives only in this process's memory; what the bodies leave on the host is on disk, so
`lab down` can clean up even after this process died.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from twin import server
from twin.model import BodyLayer, InstanceBody, body_from_dict
from twin.reconciler import Reconciler, observe

log = logging.getLogger("twin.daemon")

PASS_SECONDS = 1.0  # between passes while they still change something
# With no client request at all, a pass now and then still notices a body that died.
QUIET_PASS_SECONDS = 15.0
IDLE_GRACE_SECONDS = 60.0


# ------------------------------------------------------------------ files of the state folder
@dataclasses.dataclass(frozen=True)
class StateFiles:
    root: Path

    @property
    def endpoint(self) -> Path:
        return self.root / "endpoint"

    @property
    def pid(self) -> Path:
        return self.root / "daemon.pid"

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def regions(self) -> Path:
        return self.root / "regions"

    @property
    def body_layer(self) -> Path:
        """Which body layer the daemon runs, so that clients open the same one."""
        return self.root / "body-layer"

    @property
    def lock(self) -> Path:
        return self.root / "start.lock"

    def read_regions(self) -> list[str]:
        if not self.regions.exists():
            return []
        return sorted({line.strip() for line in self.regions.read_text().splitlines() if line.strip()})

    def regions_stamp(self) -> int:
        return self.regions.stat().st_mtime_ns if self.regions.exists() else 0

    def add_region(self, region: str) -> None:
        """List region (once) and touch the file: a client came by, so do not stop just now."""
        if region not in self.read_regions():
            with self.regions.open("a") as f:
                f.write(region + "\n")
        os.utime(self.regions)

    def remove_runtime_files(self) -> list[str]:
        gone = []
        for path in (self.endpoint, self.pid, self.regions, self.body_layer):
            if path.exists():
                path.unlink()
                gone.append(str(path))
        return gone


# ------------------------------------------------------------------ body layers
class NullBodies:
    """A body layer without containers: records bodies in DIR/null-bodies.json.

    It lets the daemon run for real without root (tests, or a look at the API alone);
    each body gets a real ed25519 host key so that key pinning works against it too.
    """

    def __init__(self, state_dir: Path):
        self.file = Path(state_dir) / "null-bodies.json"
        self.networks_file = Path(state_dir) / "null-networks.json"
        self.firewall_file = Path(state_dir) / "null-firewall.json"

    def _load(self) -> dict:
        return json.loads(self.file.read_text()) if self.file.exists() else {}

    def _save(self, data: dict) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.file)

    def ensure_network(self, subnet_cidr: str) -> None:
        nets = set(json.loads(self.networks_file.read_text())) if self.networks_file.exists() else set()
        self.networks_file.write_text(json.dumps(sorted(nets | {subnet_cidr})))

    def bodies(self) -> dict[str, InstanceBody]:
        return {i: body_from_dict(entry["body"]) for i, entry in self._load().items()}

    def start(self, body: InstanceBody) -> None:
        data = self._load()
        key = ed25519.Ed25519PrivateKey.generate().public_key()
        host_key = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        data[body.instance_id] = {"body": dataclasses.asdict(body), "host_keys": [host_key]}
        self._save(data)

    def stop(self, instance_id: str) -> None:
        data = self._load()
        data.pop(instance_id, None)
        self._save(data)

    def sync_volumes(self, body: InstanceBody) -> None:
        data = self._load()
        data[body.instance_id]["body"] = dataclasses.asdict(body)
        self._save(data)

    def apply_firewall(self, bodies: list[InstanceBody]) -> None:
        self.firewall_file.write_text(json.dumps([dataclasses.asdict(b) for b in bodies], sort_keys=True))

    def host_public_keys(self, instance_id: str) -> list[str]:
        return list(self._load().get(instance_id, {}).get("host_keys", []))

    def teardown_all(self) -> list[str]:
        gone = []
        for path in (self.file, self.networks_file, self.firewall_file):
            if path.exists():
                path.unlink()
                gone.append(f"removed {path}")
        return gone


def _host_bodies(state_dir: Path) -> BodyLayer:
    from twin.bodies import HostBodies  # needs root tools; imported only when used

    return HostBodies(state_dir)


BODY_LAYERS = {"host": _host_bodies, "null": NullBodies}


def open_body_layer(state_dir: Path, kind: str | None = None) -> BodyLayer:
    """The body layer of kind, or the one the daemon in state_dir runs (host unless it said otherwise)."""
    files = StateFiles(Path(state_dir))
    if kind is None:
        kind = files.body_layer.read_text().strip() if files.body_layer.exists() else "host"
    return BODY_LAYERS[kind](Path(state_dir))


# ------------------------------------------------------------------ the loop
class Daemon:
    def __init__(self, files: StateFiles, layer: BodyLayer, endpoint: str, idle_grace: float,
                 poked: threading.Event | None = None):
        self.files, self.layer, self.endpoint = files, layer, endpoint
        self.idle_grace = idle_grace
        self.reconciler = Reconciler(layer)
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

    def one_pass(self) -> bool:
        """Reconcile all regions; True when the daemon should stop because no lab is left."""
        desired = []
        try:
            for region in self.files.read_regions():
                if region not in self._clients:
                    self._clients[region] = server.ec2_client(self.endpoint, region, reconciler=True)
                desired.extend(observe(self._clients[region]))
        except Exception as exc:  # without a full picture, changing nothing is the safe move
            log.error("could not read the EC2 state (%s); skipping this pass", exc)
            self.changed = True  # try again soon, not only after the next request
            return False
        report = self.reconciler.reconcile(desired)
        self.changed = report.changed or bool(report.errors)  # failed actions are retried soon
        if report.changed:
            log.info("pass: started %s, stopped %s, volumes %s, firewall %s", report.started, report.stopped,
                     report.volumes_synced, "applied" if report.firewall_applied else "unchanged")
        return self._nothing_left(bool(desired))

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
    layer = open_body_layer(files.root, args.bodies)
    poked = threading.Event()
    moto, endpoint = server.start_server(on_request=poked.set)
    daemon = Daemon(files, layer, endpoint, args.idle_grace, poked)
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
