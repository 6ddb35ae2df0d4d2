"""The front door's server key and certificate in .lab/<name>/: made once, kept while they fit.

`lab install` gives the controller's Apache a key and a certificate signed by the lab's CA
(labcore/lab_ca.py). A new pair at every install would rewrite both on the host and restart
Apache each time, so a second `lab install` could never say "0 changed"; the pair is kept in
.lab/<name>/ (key 0600) and made again only when it no longer fits: the door's names or
addresses changed (an AWS host stopped and started gets a new public address), it expires
within RENEW_BEFORE, or it is not signed by the lab's current CA.

`stored` only reads (what `lab plan` and `lab install --check` show); `ensure` writes.
`key_masking` makes sure no private key reaches a screen or a log (plan JSON, --check diffs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.x509 import load_pem_x509_certificate

from labcore import lab_ca
from labcore.front_door import FrontDoor
from labcore.lab_ca import KeyAndCert
from labcore.paths import PUBLIC, StateFileError, read_bounded, write_atomic
from labcore.secrets import MASK, Secrets

DOOR_KEY = "front-door-key.pem"
DOOR_CERT = "front-door.pem"
# Renewed a month before it ends: a lab lives at most 30 days (expires_after), so a lab never
# meets its certificate's end, and a long-lived one gets a new one at an install well before.
RENEW_BEFORE = timedelta(days=30)
_PRIVATE_KEY = re.compile(r"(-----BEGIN ([A-Z ]*)PRIVATE KEY-----).*?(-----END \2PRIVATE KEY-----|\Z)", re.DOTALL)


def paths(folder: Path) -> tuple[Path, Path]:
    """(key, certificate) of the door in the lab's folder."""
    return folder / DOOR_KEY, folder / DOOR_CERT


def why_not(pair: KeyAndCert, door: FrontDoor, ca_cert_pem: bytes, now: datetime) -> str | None:
    """Why this pair no longer fits the door (None: it fits): names, expiry, issuer, key."""
    cert = pair.certificate
    names, addresses = lab_ca.names_in(pair.cert_pem)
    if (names, addresses) != (set(door.names), set(door.addresses)):
        return f"it names {sorted(names | addresses)}, the door is now {sorted({*door.names, *door.addresses})}"
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return f"it ends on {cert.not_valid_after_utc:%Y-%m-%d}"
    try:
        cert.verify_directly_issued_by(load_pem_x509_certificate(ca_cert_pem))
    except (ValueError, TypeError, InvalidSignature):
        return "the lab's CA did not sign it (the CA was made again)"
    if cert.public_key().public_numbers() != pair.key.public_key().public_numbers():
        return "the key does not belong to the certificate"
    return None


def stored(folder: Path, door: FrontDoor, now: datetime) -> KeyAndCert | None:
    """The pair in folder when it still fits the door and the lab's CA; None otherwise. Reads only."""
    key_path, cert_path = paths(folder)
    ca_path = folder / lab_ca.CA_CERT
    if not (key_path.exists() and cert_path.exists() and ca_path.exists()):
        return None
    try:
        pair = KeyAndCert(read_bounded(key_path, lab_ca.PEM_LIMIT), read_bounded(cert_path, lab_ca.PEM_LIMIT))
        return None if why_not(pair, door, read_bounded(ca_path, lab_ca.PEM_LIMIT), now) else pair
    except ValueError:  # damaged or not PEM: made again by `ensure`
        return None


def ensure(folder: Path, lab: str, door: FrontDoor, now: datetime) -> tuple[KeyAndCert, bool]:
    """The door's pair in folder, made (from the lab's CA, which is made if missing) when the stored
    one does not fit; (pair, True when it was made now). The key is written first, 0600."""
    ca = lab_ca.ensure_ca(folder, lab, now)
    found = stored(folder, door, now)
    if found is not None:
        return found, False
    try:
        pair = lab_ca.server_cert(ca, list(door.names), list(door.addresses), now)
    except ValueError as error:
        raise StateFileError(f"the front door has no name or address to certify ({error}): the inventory's "
                             f"controller has none; `lab up` writes it") from None
    key_path, cert_path = paths(folder)
    write_atomic(key_path, pair.key_pem)  # 0600
    write_atomic(cert_path, pair.cert_pem, mode=PUBLIC)
    return pair, True


def hide_private_keys(text: str) -> str:
    """Every PEM private key in text, its body replaced by the mask (a unified diff's too:
    its lines start with -, + or a space, and the markers still frame them)."""
    return _PRIVATE_KEY.sub(lambda m: f"{m.group(1)}\n{MASK}\n{m.group(3)}", text)


@dataclass(frozen=True, repr=False)
class _KeyMasking(Secrets):
    """Secrets whose mask also hides PEM private keys (the door's key is file content in the plan)."""

    hides_keys: bool = field(default=True)

    def mask(self, text: str) -> str:
        return hide_private_keys(super().mask(text))


def key_masking(secrets: Secrets) -> Secrets:
    """The same secrets, masking PEM private keys too: the plan's JSON (file contents) and
    `lab install --check`'s diffs go through Secrets.mask."""
    return secrets if isinstance(secrets, _KeyMasking) else _KeyMasking(dict(secrets.values))


def for_plan(folder: Path, lab: str, door: FrontDoor, now: datetime, *,
             make: bool) -> tuple[KeyAndCert | None, bytes | None, bool]:
    """What the plan needs: (the door's pair, the lab's CA certificate, whether the pair was made now).

    make (`lab install`): the CA and the pair are made where missing or no longer fitting.
    Otherwise (`lab plan`, `lab install --check`) nothing is written: what is stored and still
    fits, or None, and the plan then holds a line saying the file is made later."""
    if make:
        pair, made = ensure(folder, lab, door, now)
        return pair, read_bounded(folder / lab_ca.CA_CERT, lab_ca.PEM_LIMIT), made
    ca_path = folder / lab_ca.CA_CERT
    ca = read_bounded(ca_path, lab_ca.PEM_LIMIT) if ca_path.exists() else None
    return stored(folder, door, now), ca, False
