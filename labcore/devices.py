"""How EC2 shows an attached EBS volume inside an instance: what `lab up` looks for and the twin makes."""

from __future__ import annotations


def nitro_by_id_name(volume_id: str) -> str:
    """The link udev makes on a Nitro instance: the volume id, without its dash, is the NVMe serial."""
    return f"nvme-Amazon_Elastic_Block_Store_{volume_id.replace('-', '')}"
