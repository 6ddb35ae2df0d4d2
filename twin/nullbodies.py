"""A body layer without containers: records bodies in STATE/null-bodies.json.

It lets the daemon run for real without root (tests, or a look at the API alone): each
body gets a real ed25519 host key, which its console shows as cloud-init would
(twin/console.py), so that `lab up` pins keys against it as on EC2. What a real body does
by itself (reboot, power off) is one file per event in STATE/null-events/, which the
tests write (`end_from_inside`) and the reconciler takes (`ended`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import BaseModel, TypeAdapter, ValidationError

from twin import console
from twin.errors import TwinStateError
from twin.model import InstanceBody


class NullRecord(BaseModel):
    body: InstanceBody
    host_keys: list[str]
    boots: int = 1  # how many times its "container" booted (a reboot or a start adds one)


_RECORDS = TypeAdapter(dict[str, NullRecord])
_NETWORKS = TypeAdapter(list[str])


def _host_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


class NullBodies:
    def __init__(self, state_dir: Path, notify=None):
        self.root = Path(state_dir)
        self.file = self.root / "null-bodies.json"
        self.networks_file = self.root / "null-networks.json"
        self.firewall_file = self.root / "null-firewall.json"
        self.events = self.root / "null-events"
        self.notify = notify or (lambda: None)

    def _read(self, path: Path, adapter: TypeAdapter, empty):
        try:
            return adapter.validate_json(path.read_bytes())
        except FileNotFoundError:
            return empty
        except (OSError, ValidationError) as exc:
            raise TwinStateError(path, f"not the null body layer's JSON: {str(exc).splitlines()[0][:120]}") from exc

    def records(self) -> dict[str, NullRecord]:
        return self._read(self.file, _RECORDS, {})

    def _save(self, data: dict[str, NullRecord]) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps({i: r.model_dump(mode="json") for i, r in data.items()}, indent=1, sort_keys=True))
        tmp.replace(self.file)

    def ensure_network(self, subnet_cidr: str) -> None:
        nets = set(self._read(self.networks_file, _NETWORKS, []))
        self.networks_file.write_text(json.dumps(sorted(nets | {subnet_cidr})))

    def bodies(self) -> dict[str, InstanceBody]:
        return {i: r.body for i, r in self.records().items()}

    def start(self, body: InstanceBody) -> None:
        data = self.records()
        running = dataclasses.replace(body, running=True)
        old = data.get(body.instance_id)
        data[body.instance_id] = (NullRecord(body=running, host_keys=[_host_key()]) if old is None else
                                  NullRecord(body=running, host_keys=old.host_keys, boots=old.boots + 1))
        self._save(data)

    def power_off(self, body: InstanceBody) -> None:
        data = self.records()
        data[body.instance_id] = data[body.instance_id].model_copy(
            update={"body": dataclasses.replace(body, running=False)})
        self._save(data)

    def reboot(self, instance_id: str) -> None:
        self.end_from_inside(instance_id, "reboot")  # a null body reboots at once

    def end_from_inside(self, instance_id: str, how: str = "poweroff") -> None:
        """What a real body's container would report: "reboot", "poweroff", or how it died."""
        self.events.mkdir(parents=True, exist_ok=True)
        (self.events / instance_id).write_text(how + "\n")
        self.notify()

    def ended(self) -> dict[str, str]:
        found = {}
        for event in sorted(self.events.glob("i-*")) if self.events.is_dir() else []:
            found[event.name] = event.read_text().strip()
            event.unlink()
        return found

    def stop(self, instance_id: str) -> None:
        data = self.records()
        data.pop(instance_id, None)
        self._save(data)

    def sync_volumes(self, body: InstanceBody) -> None:
        data = self.records()
        data[body.instance_id] = data[body.instance_id].model_copy(update={"body": body})
        self._save(data)

    def prune_volumes(self, existing: set[str]) -> list[str]:
        return []  # a null volume has no file

    def apply_firewall(self, bodies: list[InstanceBody]) -> None:
        self.firewall_file.write_text(json.dumps([dataclasses.asdict(b) for b in bodies], sort_keys=True))

    def host_public_keys(self, instance_id: str) -> list[str]:
        record = self.records().get(instance_id)
        return list(record.host_keys) if record else []

    def console_output(self, instance_id: str) -> str | None:
        record = self.records().get(instance_id)
        if record is None:
            return None
        return console.render_boot(record.body.hostname, [f"{k} root@{record.body.hostname}" for k in record.host_keys])

    def teardown_all(self) -> list[str]:
        gone = []
        for path in (self.file, self.networks_file, self.firewall_file):
            if path.exists():
                path.unlink()
                gone.append(f"removed {path}")
        if self.events.is_dir():
            for event in self.events.iterdir():
                event.unlink()
            self.events.rmdir()
            gone.append(f"removed {self.events}")
        return gone
