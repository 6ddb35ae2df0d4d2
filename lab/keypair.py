"""The lab's SSH key: generated here, only its public half ever leaves this machine."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lab.discovery import LabResources
from lab.ec2 import with_retry
from labcore.paths import write_private
from labcore.tags import lab_tags, tag_spec


def local_public_key(key_file: Path) -> str:
    """The OpenSSH public key of key_file, creating the key (mode 0600) the first time."""
    if not key_file.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
        write_private(key_file, pem)
    key = serialization.load_ssh_private_key(key_file.read_bytes(), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    key_file.with_suffix(".pub").write_text(public + "\n")
    return public


def ensure_key_pair(ec2, lab: str, key_file: Path, found: LabResources, extra_tags: dict[str, str],
                    progress) -> list[str]:
    """Import the local public key as the lab's key pair; returns what was created."""
    public = local_public_key(key_file)
    existing = {k.key_name for k in found.key_pairs}
    if lab in existing:
        remote = with_retry(ec2.describe_key_pairs, KeyNames=[lab], IncludePublicKey=True)["KeyPairs"][0]
        if remote.get("PublicKey", "").split()[:2] == public.split()[:2]:
            return []
        progress(f"key pair {lab} in EC2 does not match {key_file}: replacing it with the local key")
        with_retry(ec2.delete_key_pair, KeyName=lab)
    with_retry(ec2.import_key_pair, KeyName=lab, PublicKeyMaterial=public.encode(),
               TagSpecifications=[tag_spec("key-pair", lab_tags(lab, extra=extra_tags))])
    progress(f"key pair {lab} imported from {key_file}.pub")
    return [f"key pair {lab}"]
