"""The cloud from this machine, through the TLS front door, for real on the twin (issue 23).

After `lab up` and `lab install` of the default lab, this machine uses the cloud as a user's
laptop would, with nothing but the lab's laptop openrc (.lab/<name>/demo-openrc: the door's
HTTPS URL, OS_INTERFACE=public, OS_CACERT at the lab's CA) and pip's python-openstackclient and
python-swiftclient: a token, a container, a 5 MiB object uploaded and downloaded with the same
sha256. Then: the catalog (public through the door, internal and admin the guide's), Keystone's
version links through the door, 443 the only new listener and HTTPS the only thing it speaks,
the lab's CA key nowhere on the hosts, a second install that changes nothing, and `lab verify`.

Run it under the twin's lock: `flock /tmp/twin.lock .venv/bin/pytest -m e2e tests/test_e2e_front_door.py`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_e2e_sim import ROOT, _env, _lab, _on, twin_lab_home

from lab.laptop_openrc import read_rc
from labcore.front_door import front_door
from labcore.inventory import load_inventory

pytestmark = pytest.mark.e2e

LAB = "rocky-lab"
BIN = ROOT / ".venv" / "bin"
SIZE = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def door_home(tmp_path_factory):
    yield from twin_lab_home(tmp_path_factory, "e2e-front-door")


def _client_env(home: Path, which: str) -> dict:
    """This machine's environment with the laptop openrc's variables and nothing of a proxy."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OS_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(read_rc((home / LAB / f"{which}-openrc").read_text()))
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def _client(env: dict, *argv: str, cwd: Path | None = None) -> str:
    started = time.monotonic()
    proc = subprocess.run(list(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
    print(f"$ {' '.join(argv)}   [{time.monotonic() - started:.1f} s, exit {proc.returncode}]")
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _timed(home: Path, *args: str):
    started = time.monotonic()
    proc = _lab(home, *args)
    return proc, time.monotonic() - started


def _speaks_only_tls(address: str) -> None:
    """Plain HTTP on 443 is refused with Apache's 400, and nothing answers on port 80."""
    with socket.create_connection((address, 443), timeout=10) as raw:
        raw.sendall(f"GET / HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
        answer = raw.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 400") and "SSL" in answer, answer[:300]
    with pytest.raises(OSError):
        socket.create_connection((address, 80), timeout=5).close()


def _version_links(door, ca: Path) -> list[str]:
    """Keystone's own links at https://HOST/identity/v3, as a client's discovery reads them."""
    import urllib.request

    context = ssl.create_default_context(cafile=str(ca))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    with opener.open(door.identity_url, timeout=20) as answer:
        body = json.load(answer)
    return [link["href"] for link in body["version"]["links"]]


def _ssh_with_stdin(home: Path, node: str, command: str, stdin: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "lab", "ssh", node, "--", command], cwd=ROOT, env=_env(home),
                          input=stdin, capture_output=True, text=True, timeout=300)
    print(f"$ lab ssh {node} -- {command}   [exit {proc.returncode}; its input on stdin]")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


# What a lab installed before the front door has: the guide's public endpoints.
BEFORE_THE_DOOR = ("UPDATE endpoint e JOIN service s ON s.id = e.service_id SET e.url = CASE s.type "
                   "WHEN 'identity' THEN 'http://controller:5000/v3/' "
                   "ELSE 'http://controller:8080/v1/AUTH_%(project_id)s' END WHERE e.interface = 'public';\n")


def _catalog(home: Path) -> dict:
    admin = _client_env(home, "admin")
    endpoints = json.loads(_client(admin, "openstack", "endpoint", "list", "-f", "json"))
    assert len(endpoints) == 6, endpoints  # no endpoint twice
    return {(e["Service Type"], e["Interface"]): e["URL"] for e in endpoints}


def _files_holding(home: Path, node: str, needles: list[str], where: str = "/") -> str:
    """Every file on node holding one of needles (the CA key's PEM lines or its private number), as root.

    The needles go on grep's stdin: on its command line sudo would log them to the host's journal
    (the search itself would put the key's bytes on the host), and this test's output would show them."""
    command = (f"sudo grep -rlsF -D skip -f - {where} --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "
               "--exclude-dir=run; true")  # exit 1: nothing found; 2: some file unreadable (a socket's)
    return _ssh_with_stdin(home, node, command, "\n".join(needles) + "\n")


def test_the_cloud_from_this_machine_through_the_front_door(door_home, tmp_path):
    home = door_home
    _, up_seconds = _timed(home, "up")
    install, install_seconds = _timed(home, "install")
    assert "the front door's certificate made for" in install.stdout
    folder = home / LAB
    inventory = load_inventory(folder / "inventory.yaml")
    door = front_door(inventory)
    ca = folder / "ca.pem"

    # --- the user's side: the laptop openrc, pip's clients, nothing else
    demo = _client_env(home, "demo")
    assert demo["OS_AUTH_URL"] == door.identity_url and demo["OS_INTERFACE"] == "public"
    assert Path(demo["OS_CACERT"]).resolve() == ca.resolve()
    token = json.loads(_client(demo, "openstack", "token", "issue", "-f", "json"))
    assert token["id"] and token["project_id"]
    _client(demo, "openstack", "container", "create", "from-this-machine")
    assert "from-this-machine" in _client(demo, "openstack", "container", "list", "-f", "value")
    payload = tmp_path / "five.bin"
    payload.write_bytes(os.urandom(SIZE))
    _client(demo, "swift", "upload", "--object-name", "five.bin", "from-this-machine", str(payload))
    back = tmp_path / "back.bin"
    _client(demo, "swift", "download", "-o", str(back), "from-this-machine", "five.bin")
    assert back.stat().st_size == SIZE and _sha256(back) == _sha256(payload)

    # --- the catalog: public through the door (HTTPS), internal and admin the guide's
    catalog = {("identity", "public"): f"{door.identity_url}/",
               ("identity", "internal"): "http://controller:5000/v3/",
               ("identity", "admin"): "http://controller:5000/v3/",
               ("object-store", "public"): door.object_store_url,
               ("object-store", "internal"): "http://controller:8080/v1/AUTH_%(project_id)s",
               ("object-store", "admin"): "http://controller:8080/v1"}
    assert _catalog(home) == catalog
    assert all(link.startswith(f"{door.identity_url}/") for link in _version_links(door, ca))

    # --- the door: 443 on the controller, only HTTPS, nothing new on 80
    listening = _on(home, "controller", "ss -ltnH").stdout
    ports = {int(m) for m in re.findall(r"\S+:(\d+)\s", listening)}
    assert 443 in ports and 80 not in ports, listening
    _speaks_only_tls(door.host)

    # --- the lab's CA: its certificate trusted on the controller, its key on no host
    trusted = _on(home, "controller", "cat /usr/local/share/ca-certificates/openstack-ec2-lab-ca.crt").stdout
    assert trusted.strip() == ca.read_text().strip()
    key_pem = (folder / "ca-key.pem").read_text()
    from cryptography.hazmat.primitives import serialization

    number = serialization.load_pem_private_key(key_pem.encode(), None).private_numbers().private_value
    needles = [line for line in key_pem.splitlines() if line and not line.startswith("-----")] + [f"{number:x}"]
    ca_line = ca.read_text().splitlines()[1]  # the search's control: what the controller does hold
    assert _files_holding(home, "controller", [ca_line], "/usr/local/share") == \
        "/usr/local/share/ca-certificates/openstack-ec2-lab-ca.crt"
    for node in (n.name for n in inventory.nodes):
        assert _files_holding(home, node, needles) == "", f"the lab's CA key is on {node}"

    # --- a lab installed before the door: its public endpoints set to the door's, none made twice
    _ssh_with_stdin(home, "controller", "sudo mysql keystone", BEFORE_THE_DOOR)
    _, upgrade_seconds = _timed(home, "install")
    assert _catalog(home) == catalog

    # --- nothing to change the second time; the lab's own checks still pass
    again, again_seconds = _timed(home, "install")
    assert re.search(r"\b0 changed\b", again.stdout), again.stdout
    assert "certificate made" not in again.stdout
    verify = _lab(home, "verify")
    assert re.search(r"\b\d+ passed, 0 failed", verify.stdout)
    print(f"\nmeasured: lab up {up_seconds:.1f} s, lab install {install_seconds:.1f} s, "
          f"lab install of a lab from before the door {upgrade_seconds:.1f} s, lab install again {again_seconds:.1f} s")
