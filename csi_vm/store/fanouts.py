"""What a fan-out asks of the journal: the state of one flow it started, by id.

A fan-out gives each clone's flow an id of its own making, so that after a
crash it can tell a clone it made (its flow done) from one it never finished
(its flow rolled back, or never begun).
"""

from __future__ import annotations

from csi_vm.store import db


def flow_state(store: db.Store, flow_id: str) -> str | None:
    """The journal state of a flow ("running", "done", ...), or None for no such flow."""
    row = store.connection().execute("SELECT state FROM flows WHERE id = ?", (flow_id,)).fetchone()
    return None if row is None else str(row["state"])
