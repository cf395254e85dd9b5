"""List, then watch, one resource until told to stop: what every loop of csi-vm follows.

The controller and the node agent both keep up with their objects this way,
as client-go's reflector does. A list hands every object over and gives the
resourceVersion a watch starts from; the watch runs in spans of at most
`WATCH_SPAN` seconds, each resuming from the last version seen (an event's
or a bookmark's), so ``stop`` is noticed within a span. Every ``resync``
seconds the loop lists again: that picks up what changed without an event
on the object itself (a child that made progress, a guest that crashed).
A 410 Gone (the version is older than the server's history) lists again at
once; any other failure waits a second and resumes the watch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from csi_vm import errors
from csi_vm.kube import errors as kube_errors
from csi_vm.kube import objects

log = logging.getLogger("csi_vm.kube.informer")

#: called with the event type (ADDED for what a list found) and the object
Handler = Callable[[str, objects.Json], None]
#: Longest single watch request, in seconds: how late ``stop`` may be noticed.
WATCH_SPAN = 10


def sync(
    objs: objects.Objects,
    res: objects.Resource,
    *,
    namespace: str,
    handle: Handler,
    selector: str = "",
    fields: str = "",
) -> str:
    """Hand every object of ``res`` to ``handle`` as ADDED; the list's resourceVersion.

    ``selector``, ``fields``: only the objects these label and field selectors match.
    """
    items, version = objs.list(res, namespace=namespace, selector=selector, fields=fields)
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
    clock: Callable[[], float] = time.monotonic,
    selector: str = "",
    fields: str = "",
) -> None:
    """List and watch ``res`` until ``stop``; ``handle`` sees every object and change.

    ``selector``, ``fields``: only the objects these label and field selectors match.
    """
    version, listed = "", 0.0
    while not stop.is_set():
        try:
            if not version or clock() - listed >= resync:
                version, listed = (
                    sync(
                        objs,
                        res,
                        namespace=namespace,
                        handle=handle,
                        selector=selector,
                        fields=fields,
                    ),
                    clock(),
                )
            span = int(max(1, min(WATCH_SPAN, resync - (clock() - listed))))
            for event in objs.watch(
                res,
                namespace=namespace,
                since=version,
                timeout=span,
                bookmarks=True,
                selector=selector,
                fields=fields,
            ):
                version = event.version or version
                if event.type != objects.BOOKMARK:
                    handle(event.type, event.object)
                if stop.is_set():
                    return
        except kube_errors.Expired as err:
            log.info("watch %s: %s; listing again", res.plural, err)
            version = ""
        except errors.CsiVmError as err:
            log.warning(
                "watch %s: %s; watching again from %s", res.plural, err, version or "a list"
            )
            stop.wait(1.0)
