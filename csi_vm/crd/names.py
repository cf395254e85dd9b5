"""Names one side makes and the other looks up.

The controller makes a VM's holder Pod and a storage migration's claims;
the node agent finds them by these names. The migration strategies are
written by the controller into a CsiVMMigration's status and run by the
agent of the source node.
"""

from __future__ import annotations

import hashlib

#: A migration that moves memory only: every disk's volume is shared across nodes.
SHARED_MIGRATION = "shared-volume"
#: A migration that also copies every disk into new claims on the target (`migration_claim`).
STORAGE_MIGRATION = "storage-migration"
#: The longest object name the API accepts (a DNS subdomain).
_MAX_NAME = 253


def holder_pod(vm: str, node: str) -> str:
    """The Pod that publishes ``vm``'s disks on ``node``: one per VM and node."""
    name = f"{vm}-disks-{node}"
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(f"{vm}/{node}".encode()).hexdigest()[:12]
    return f"{vm[:200]}-disks-{digest}"


def migration_claim(migration: str, disk: str) -> str:
    """The target's claim of ``disk`` in a storage migration, named after it: a retry finds it."""
    return f"{migration}-{disk}"
