"""The twin's DHCP server: dnsmasq on the bridge, each body's address for its interface's MAC.

On EC2 an instance's first question at boot is DHCP: cloud-init's Ec2Local datasource
takes a lease on the primary interface (the ENI's MAC gets the ENI's private address)
before it reads the metadata service. Without a server on the twin's bridge that
question went unanswered and cost every boot a timeout. Here the real Debian dnsmasq
answers it as the VPC does: a fixed lease per MAC (the ENI's, which the twin gives the
body's eth0), the gateway as router, nothing for an unknown MAC. It is DHCP only
(--port=0: no DNS) and reads no configuration of this machine (--conf-file=/dev/null).

The twin gives each body its address before it boots, so the lease changes nothing in
the body (cloud-init only reads it); what it buys is that the body's first boot asks the
questions an EC2 instance's asks, in the order it asks them, and gets answers.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from twin import procs
from twin.hostcmd import HostCommandError

log = logging.getLogger(__name__)

DNSMASQ = "/usr/sbin/dnsmasq"
LEASE = "1h"  # EC2's leases last an hour too
PID_FILE = "dhcp.pid"
LOG_FILE = "dhcp.log"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Lease:
    mac: str
    ip: str
    subnet_cidr: str


def dnsmasq_argv(bridge: str, leases: list[Lease], state_dir: Path) -> list[str]:
    """dnsmasq's command line: one static range per subnet, one host line per lease."""
    argv = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--no-resolv", "--no-hosts",
            # bind-dynamic: on the bridge alone (SO_BINDTODEVICE), as libvirt runs one per
            # network, so it starts beside another DHCP server of this machine's, and before
            # the bridge exists (the first pass makes it).
            f"--interface={bridge}", "--bind-dynamic", "--except-interface=lo", "--dhcp-authoritative",
            "--leasefile-ro",
            # The body holds its address before it asks (the twin set it), so a ping check
            # would find the address taken by the very host that asks for it.
            "--no-ping", "--log-dhcp", f"--log-facility={state_dir / LOG_FILE}", f"--pid-file={state_dir / PID_FILE}"]
    for cidr in sorted({lease.subnet_cidr for lease in leases}):
        net = ipaddress.IPv4Network(cidr)
        argv.append(f"--dhcp-range={net.network_address},static,{net.netmask},{LEASE}")
    argv += [f"--dhcp-host={lease.mac},{lease.ip}" for lease in sorted(leases, key=lambda item: item.ip)]
    return argv


def _die_with_parent() -> None:
    """In the child before exec: dnsmasq ends when the daemon does, even when the daemon is killed."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class DhcpServer:
    """One dnsmasq for the bridge, started again whenever the leases it must give change."""

    def __init__(self, bridge: str, state_dir: Path):
        self.bridge, self.state_dir = bridge, Path(state_dir)
        self._process: subprocess.Popen | None = None
        self._argv: list[str] = []

    def serve(self, leases: list[Lease]) -> None:
        """Answer exactly these leases (none: no server). A failure to start is logged and
        tried again at the next call: a body then boots as it would with no DHCP answer."""
        argv = dnsmasq_argv(self.bridge, leases, self.state_dir) if leases else []
        if argv == self._argv and (not argv or self._alive()):
            return
        self.stop()
        if not argv:
            return
        try:
            self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        except OSError as exc:
            log.error("DHCP server: could not start %s: %s", DNSMASQ, exc)
            return
        self._argv = argv
        log.info("DHCP server on %s: %d leases", self.bridge, len(leases))

    def _alive(self) -> bool:
        if self._process is None:
            return False
        if self._process.poll() is None:
            return True
        error = self._process.stderr.read().decode(errors="replace").strip() if self._process.stderr else ""
        log.error("DHCP server exited (%s): %s", self._process.returncode, error[-300:])
        self._process = None
        return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process, self._argv = None, []


def stop_leftover(state_dir: Path) -> list[str]:
    """A dnsmasq this twin started and nobody stopped (its daemon killed before it could):
    found by its pid file, and ended only when that pid runs dnsmasq with this twin's files."""
    pid_file = Path(state_dir) / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return []
    command = procs.command_line(pid)
    if not command or os.path.basename(command[0]) != b"dnsmasq" or f"--pid-file={pid_file}".encode() not in command:
        pid_file.unlink(missing_ok=True)
        return []
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError as exc:
        raise HostCommandError(f"twin: could not stop the DHCP server (pid {pid}): {exc}") from exc
    pid_file.unlink(missing_ok=True)
    return [f"DHCP server (dnsmasq, pid {pid})"]
