"""List, then watch, one resource until told to stop: what every loop of csi-vm follows.

The controller and the node agent both keep up with their objects this way.
One pass lists every object and hands each over, then follows a watch from
the list's resourceVersion. A watch ends after ``resync`` seconds and the next
pass lists again: that picks up what changed without an event on the object
itself (a child that made progress, a guest that crashed). A failed list or
watch (a 410 Gone included) also means: wait a second, list again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from csi_vm import errors
from csi_vm.kube import objects

log = logging.getLogger("csi_vm.kube.informer")

#: called with the event type (ADDED for what a list found) and the object
Handler = Callable[[str, objects.Json], None]


def sync(objs: objects.Objects, res: objects.Resource, *, namespace: str, handle: Handler) -> str:
    """Hand every object of ``res`` to ``handle`` as ADDED; the list's resourceVersion."""
    items, version = objs.list(res, namespace=namespace)
    for obj in items:
        handle("ADDED", obj)
    return version


def follow(
    objs: objects.Objects,
    res: objects.Resource,
    *,
    namespace: str,
    resync: int,
    stop: threading.Event,
    handle: Handler,
) -> None:
    """List and watch ``res`` until ``stop``; ``handle`` sees every object and change."""
    while not stop.is_set():
        try:
            version = sync(objs, res, namespace=namespace, handle=handle)
            for event in objs.watch(res, namespace=namespace, since=version, timeout=resync):
                if stop.is_set():
                    return
                handle(event.type, event.object)
        except errors.CsiVmError as err:
            log.warning("watch %s: %s; listing again", res.plural, err)
            stop.wait(1.0)
