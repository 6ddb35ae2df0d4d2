"""How each container the daemon booted came to an end, heard as it happens.

systemd-nspawn's exit status says what the body did: 133 when its systemd rebooted
(`systemctl reboot`, or the SIGINT the twin sends for RebootInstances), 0 when it powered
off or halted (`poweroff`, `shutdown -h`, a timer that calls them), anything else when the
container died otherwise (its init killed: 1). One thread per container waits for it and
pokes the daemon, so a reboot boots again within a second instead of at the next quiet
pass. Ends the twin causes itself (terminate, stop) are expected and not reported.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

NSPAWN_REBOOTED = 133  # systemd-nspawn(1): "the container requested a reboot"
NSPAWN_POWERED_OFF = 0


def how_it_ended(code: int | None, rebooting: bool) -> str:
    if rebooting or code == NSPAWN_REBOOTED:
        return "reboot"
    if code == NSPAWN_POWERED_OFF:
        return "poweroff"
    return f"died (systemd-nspawn exit {code})"


class ExitWatcher:
    def __init__(self, notify: Callable[[], None] | None = None):
        self.notify = notify or (lambda: None)
        self._lock = threading.Lock()
        self._ended: dict[str, str] = {}
        self._watching: dict[str, subprocess.Popen] = {}
        self._expected: set[str] = set()
        self._rebooting: set[str] = set()

    def watch(self, instance_id: str, process: subprocess.Popen) -> None:
        with self._lock:
            self._watching[instance_id] = process
            self._expected.discard(instance_id)
            self._rebooting.discard(instance_id)
        threading.Thread(target=self._wait, args=(instance_id, process), name=f"watch-{instance_id}",
                         daemon=True).start()

    def watched(self, instance_id: str) -> bool:
        with self._lock:
            return instance_id in self._watching

    def expect_end(self, instance_id: str) -> None:
        """The twin ends this container itself (terminate, stop): do not report it."""
        with self._lock:
            if instance_id in self._watching:
                self._expected.add(instance_id)

    def expect_reboot(self, instance_id: str) -> None:
        """The twin asked this container to reboot: however it ends now, it is a reboot."""
        with self._lock:
            self._rebooting.add(instance_id)

    def take(self) -> dict[str, str]:
        """The ends heard since the last call: instance id -> reboot, poweroff or how it died."""
        with self._lock:
            ended, self._ended = self._ended, {}
        return ended

    def _wait(self, instance_id: str, process: subprocess.Popen) -> None:
        code = process.wait()
        with self._lock:
            if self._watching.get(instance_id) is not process:
                return  # a newer container of the same instance is watched now
            del self._watching[instance_id]
            if instance_id in self._expected:
                self._expected.discard(instance_id)
                return
            how = how_it_ended(code, instance_id in self._rebooting)
            self._rebooting.discard(instance_id)
            self._ended[instance_id] = how
        log.info("the container of %s ended: %s", instance_id, how)
        self.notify()

    def add(self, instance_id: str, how: str) -> None:
        """Report an end the twin caused on purpose (a hard reset counts as the reboot it was)."""
        with self._lock:
            self._ended[instance_id] = how
        self.notify()
