"""The lab's SSH key: generated here, only its public half ever leaves this machine, never replaced.

The instances hold the public key they were launched with, so the EC2 key pair is never
deleted or re-imported with another key: without the private key that made them, they
could not be reached again, and nothing would say so. A run that finds the key missing
while the lab has instances, or a key pair in EC2 that holds another key (another
checkout's), stops before creating anything and says which checkout to use.
"""

from __future__ import annotations

from pathlib import Path

from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lab.discovery import LabResources
from lab.ec2 import error_code, with_retry
from labcore.errors import CloudStateError
from labcore.paths import (
    PUBLIC,
    LabPaths,
    Progress,
    StateFileError,
    read_bounded,
    tighten,
    write_atomic,
)
from labcore.tags import lab_tags, tag_spec

MAX_KEY_BYTES = 64 * 1024  # an OpenSSH ed25519 key is about 400 bytes


def generate_key(key_file: Path) -> str:
    """A new ed25519 key in key_file (0600) and key_file.pub (0644), each written atomically; its public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    write_atomic(key_file, pem)
    return _write_public(key_file, _openssh_public(key))


def read_public_key(key_file: Path, progress: Progress) -> str:
    """The OpenSSH public key of the private key in key_file; StateFileError if it is missing or damaged.

    A private key others may read is put back to 0600 with a line (OpenSSH refuses it
    otherwise), and key_file.pub is rewritten when it does not match.
    """
    if not key_file.exists():
        raise StateFileError(_missing(key_file))
    tighten(key_file, progress)
    raw = read_bounded(key_file, MAX_KEY_BYTES)
    try:
        if len(raw) > MAX_KEY_BYTES:
            raise ValueError("too large")
        key = serialization.load_ssh_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:  # cryptography's answers for empty, garbage, cut-short, encrypted keys
        reason = "it is empty" if not raw.strip() else f"not an unencrypted OpenSSH private key: {str(exc)[:80]}"
        raise StateFileError(f"{key_file} is damaged ({reason}): the lab's instances can only be reached with "
                             f"the key they were launched with: restore it to {key_file}, or `lab down`") from None
    return _write_public(key_file, _openssh_public(key))


def require_private_key(paths: LabPaths, progress: Progress) -> None:
    """Before any SSH: the lab's private key is there, readable and 0600; one line saying what to do if not."""
    read_public_key(paths.key_file, progress)


def ensure_key_pair(ec2, lab: str, key_file: Path, found: LabResources, extra_tags: dict[str, str],
                    progress) -> list[str]:
    """The lab's key pair holds the local public key; returns what was created.

    Refuses with exit 1, before anything is created: the local key missing while the lab
    has instances, and a key pair in EC2 that holds another key than the local one: it is
    never replaced, since instances may hold it, or another checkout's `up` may be about
    to launch with it. A damaged local key is exit 2 (a file to restore).
    """
    has_pair = lab in {k.key_name for k in found.key_pairs}
    if not key_file.exists():
        if found.instances:
            raise CloudStateError(_missing(key_file, [i.node for i in found.instances]))
        if has_pair:
            raise _other_key(lab, key_file, "this checkout has none")
        progress(f"new SSH key {key_file} (mode 0600)")
        public = generate_key(key_file)
    else:
        public = read_public_key(key_file, progress)
    if has_pair:
        _same_key_or_refuse(ec2, lab, key_file, public)
        return []
    if not with_retry(_import, ec2, lab, public, extra_tags):
        _same_key_or_refuse(ec2, lab, key_file, public)  # another run imported it meanwhile
        progress(f"key pair {lab} was imported meanwhile by another run, with this checkout's key")
        return []
    progress(f"key pair {lab} imported from {key_file}.pub")
    return [f"key pair {lab}"]


def _import(ec2, lab: str, public: str, extra_tags: dict[str, str]) -> bool:
    """ImportKeyPair; False if a key pair of that name exists already (InvalidKeyPair.Duplicate).

    Runs inside with_retry, which turns every ClientError into a CloudError: the duplicate
    has to be recognised here, on the raw answer.
    """
    try:
        ec2.import_key_pair(KeyName=lab, PublicKeyMaterial=public.encode(),
                            TagSpecifications=[tag_spec("key-pair", lab_tags(lab, extra=extra_tags))])
    except ClientError as exc:
        if error_code(exc) == "InvalidKeyPair.Duplicate":
            return False
        raise
    return True


def _same_key_or_refuse(ec2, lab: str, key_file: Path, public: str) -> None:
    pairs = with_retry(ec2.describe_key_pairs, KeyNames=[lab], IncludePublicKey=True, retry_not_found=True)
    remote = pairs["KeyPairs"][0].get("PublicKey", "")
    if remote.split()[:2] != public.split()[:2]:
        raise _other_key(lab, key_file, f"not {key_file}.pub")


def _other_key(lab: str, key_file: Path, why: str) -> CloudStateError:
    return CloudStateError(f"key pair {lab} in EC2 holds another public key ({why}), and it is never replaced: "
                           f"instances or another checkout's `lab up` may use it; run lab commands from the "
                           f"checkout that made the lab (its {key_file.name}), or `lab down` then `lab up`")


def _missing(key_file: Path, nodes: list[str] | None = None) -> str:
    holders = f"lab's instances ({', '.join(sorted(nodes))})" if nodes else "lab's instances"
    return (f"{key_file} is missing: the {holders} can only be reached with it: restore it to {key_file}, "
            f"or `lab down`")


def _openssh_public(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _write_public(key_file: Path, public: str) -> str:
    pub = key_file.with_name(key_file.name + ".pub")
    text = public + "\n"
    if not pub.is_file() or pub.stat().st_mode & 0o133 or pub.read_text(errors="replace") != text:
        write_atomic(pub, text, mode=PUBLIC)  # missing, writable by others, or another key's
    return public
