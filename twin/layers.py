"""Which body layer a process opens: the daemon's own choice, recorded in its state folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from twin.errors import TwinStateError
from twin.model import BodyLayer
from twin.nullbodies import NullBodies
from twin.state import StateFiles

log = logging.getLogger(__name__)


def _host_bodies(state_dir: Path, notify=None) -> BodyLayer:
    from twin.bodies import HostBodies  # needs root tools; imported only when used

    return HostBodies(state_dir, notify=notify)


BODY_LAYERS = {"host": _host_bodies, "null": NullBodies}


def open_body_layer(state_dir: Path, kind: str | None = None, notify=None) -> BodyLayer:
    """The body layer of kind, or the one the daemon in state_dir runs (a damaged body-layer
    file is a TwinStateError)."""
    kind = kind or StateFiles(Path(state_dir)).read_body_layer()
    return BODY_LAYERS[kind](Path(state_dir), notify=notify)


def layers_for_cleanup(state_dir: Path) -> list[BodyLayer]:
    """The layer to clean up with; when the body-layer file is damaged, every layer that left
    something in the folder (the null layer only removes its own files)."""
    files = StateFiles(Path(state_dir))
    try:
        return [open_body_layer(files.root)]
    except TwinStateError as exc:  # a damaged file must not keep `lab down` from cleaning up
        log.warning("%s; cleaning up with every body layer that left something", exc)
        layers: list[BodyLayer] = [NullBodies(files.root)]
        host_left = (files.root / "bodies").exists() or (files.root / "volumes").exists()
        return layers + ([_host_bodies(files.root)] if host_left and os.geteuid() == 0 else [])
