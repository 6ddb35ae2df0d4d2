"""The lab's own certificate authority, and the server certificate of its TLS front door.

The cloud's public endpoints are served over HTTPS so that the lab's passwords never cross
the internet in clear text. No public CA can vouch for a lab that lives a few hours at an
address AWS hands out, so each lab makes its own CA on the machine that made the lab: its
key never leaves `.lab/<name>/` (0600), its certificate (public) is what a user's `openstack`
client (OS_CACERT) and browser trust. The controller gets only a server key and a
certificate signed by it, naming the addresses the user's machine reaches it by.

ECDSA P-256 keys: what browsers, Apache and Python's ssl all take, and made in a millisecond.
Everything but `ensure_ca` is pure (the time is given), so tests need no clock or disk.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from labcore.paths import PUBLIC, StateFileError, read_bounded, write_atomic

CA_KEY = "ca-key.pem"
CA_CERT = "ca.pem"
CA_DAYS = 3650  # outlives any lab (expires_after is at most 30 days, or never)
# A locally trusted CA is exempt from the 398-day limit browsers put on public ones; kept
# under it all the same, so no browser ever has a reason to refuse it.
SERVER_DAYS = 397
BACKDATE = timedelta(minutes=5)  # a host whose clock is a little behind still accepts it
PEM_LIMIT = 64 * 1024


@dataclass(frozen=True)
class KeyAndCert:
    key_pem: bytes  # secret: never printed, never logged
    cert_pem: bytes

    def __repr__(self) -> str:  # never let a key reach a log through repr()
        return f"KeyAndCert(cert={self.certificate.subject.rfc4514_string()!r}, key=<hidden>)"

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        return serialization.load_pem_private_key(self.key_pem, password=None)


def make_ca(lab: str, now: datetime, key: ec.EllipticCurvePrivateKey | None = None) -> KeyAndCert:
    """A CA certificate for one lab, named after it, that can sign server certificates only
    (with a new key, or the one given: a run that lost the race to write the key uses the winner's)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openstack-ec2-lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"{lab} lab CA")])
    cert = (_builder(name, name, key.public_key(), now, CA_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return KeyAndCert(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def server_cert(ca: KeyAndCert, names: list[str], addresses: list[str], now: datetime) -> KeyAndCert:
    """A server key and certificate for the front door, valid for every DNS name and IP address given."""
    if not names and not addresses:
        raise ValueError("a server certificate needs at least one name or address")
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (names or addresses)[0])])
    issuer = ca.certificate
    cert = (_builder(subject, issuer.subject, key.public_key(), now, SERVER_DAYS)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
            .sign(ca.key, hashes.SHA256()))
    return KeyAndCert(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def names_in(cert_pem: bytes) -> tuple[set[str], set[str]]:
    """(DNS names, IP addresses) a certificate is valid for: to tell whether it still fits the lab."""
    sans = x509.load_pem_x509_certificate(cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return (set(sans.value.get_values_for_type(x509.DNSName)),
            {str(a) for a in sans.value.get_values_for_type(x509.IPAddress)})


def ensure_ca(folder: Path, lab: str, now: datetime) -> KeyAndCert:
    """The lab's CA from folder, made there once (key 0600, certificate 0644) if it has none.

    The key is written first and never replaced (a second run that raced this one keeps
    the first key), and the certificate is made from whichever key is on disk.
    """
    key_path, cert_path = folder / CA_KEY, folder / CA_CERT
    if key_path.exists() and cert_path.exists():
        return _load(key_path, cert_path)
    fresh = make_ca(lab, now)
    write_atomic(key_path, fresh.key_pem, replace=False)
    if not cert_path.exists():
        on_disk = _load_key(key_path)
        if on_disk.key_pem != fresh.key_pem:
            fresh = make_ca(lab, now, on_disk.key)
        write_atomic(cert_path, fresh.cert_pem, mode=PUBLIC)
    return _load(key_path, cert_path)


def _load(key_path: Path, cert_path: Path) -> KeyAndCert:
    pair = KeyAndCert(_load_key(key_path).key_pem, read_bounded(cert_path, PEM_LIMIT))
    try:
        certificate = pair.certificate
    except ValueError:
        raise StateFileError(f"{cert_path} is not a PEM certificate: remove it and run the command again "
                             f"(a new one is made from {key_path.name})") from None
    if certificate.public_key().public_numbers() != pair.key.public_key().public_numbers():
        raise StateFileError(f"{cert_path} does not belong to {key_path}: remove {cert_path.name} and run "
                             f"the command again (a new one is made from the key)")
    return pair


def _load_key(key_path: Path) -> KeyAndCert:
    raw = read_bounded(key_path, PEM_LIMIT)
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except ValueError:
        raise StateFileError(f"{key_path} is not a PEM private key: the lab's CA is damaged; `lab down` and "
                             f"`lab up` make a new one") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise StateFileError(f"{key_path} is not an ECDSA key as the lab makes them; `lab down` and `lab up` "
                             f"make a new one")
    return KeyAndCert(_key_pem(key), b"")


def _builder(subject: x509.Name, issuer: x509.Name, public_key, now: datetime, days: int) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + timedelta(days=days)))


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
