"""The list-and-watch loop over a scripted stand-in for `objects.Objects`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from csi_vm import errors
from csi_vm.kube import errors as kube_errors
from csi_vm.kube import informer, objects

pytestmark = pytest.mark.timeout(10)

RES = objects.Resource(group="csi-vm.io", version="v1alpha1", plural="csivms")


def _obj(name: str, version: int) -> objects.Json:
    return {"metadata": {"name": name, "resourceVersion": str(version)}}


def _bookmark(version: int) -> objects.WatchEvent:
    return objects.WatchEvent(objects.BOOKMARK, {"metadata": {"resourceVersion": str(version)}})


class Scripted:
    """Lists answer from ``lists``; each watch plays the next entry of ``watches``."""

    def __init__(self, lists: list[tuple[list[objects.Json], str]], watches: list[Any]) -> None:
        self.lists, self.watches = lists, watches
        self.listed = 0
        self.since: list[str] = []
        self.stop = threading.Event()

    def list(
        self, res: objects.Resource, *, namespace: str = "", selector: str = "", fields: str = ""
    ) -> tuple[list[Any], str]:
        self.listed += 1
        return self.lists.pop(0)

    def watch(self, res: objects.Resource, **kwargs: Any) -> Iterator[objects.WatchEvent]:
        self.since.append(kwargs["since"])
        assert kwargs["bookmarks"] is True
        if not self.watches:
            self.stop.set()
            return
        step = self.watches.pop(0)
        if isinstance(step, Exception):
            raise step
        yield from step


def _follow(objs: Scripted, *, resync: int = 300) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    informer.follow(
        objs,  # type: ignore[arg-type]
        RES,
        namespace="",
        resync=resync,
        stop=objs.stop,
        handle=lambda kind, obj: seen.append((kind, obj["metadata"]["name"])),
    )
    return seen


def test_a_watch_resumes_from_the_last_event_or_bookmark_without_listing() -> None:
    objs = Scripted(
        lists=[([_obj("a", 3)], "5")],
        watches=[
            [objects.WatchEvent("ADDED", _obj("b", 6)), _bookmark(9)],
            [objects.WatchEvent("DELETED", _obj("a", 11))],
        ],
    )
    seen = _follow(objs)
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]  # bookmarks are no change
    assert objs.since == ["5", "9", "11"]
    assert objs.listed == 1


def test_an_expired_version_lists_again_at_once() -> None:
    gone = kube_errors.Expired("watch csivms.csi-vm.io on s failed: HTTP 410")
    objs = Scripted(lists=[([], "5"), ([_obj("a", 20)], "21")], watches=[gone])
    started = time.monotonic()
    seen = _follow(objs)
    assert time.monotonic() - started < 0.5  # no pause before the new list
    assert seen == [("ADDED", "a")]
    assert objs.since == ["5", "21"]


def test_another_failure_waits_and_resumes_the_watch() -> None:
    down = errors.Unreachable("watch csivms.csi-vm.io on s failed: no answer")
    objs = Scripted(lists=[([], "5")], watches=[[objects.WatchEvent("ADDED", _obj("a", 6))], down])
    seen = _follow(objs)
    assert seen == [("ADDED", "a")]
    assert objs.since == ["5", "6", "6"]
    assert objs.listed == 1


def test_resync_lists_again() -> None:
    objs = Scripted(lists=[([_obj("a", 3)], "5"), ([_obj("a", 3)], "5")], watches=[[]])
    now = iter(range(0, 1000, 10))  # every look at the clock is 10 s later
    seen: list[str] = []
    informer.follow(
        objs,  # type: ignore[arg-type]
        RES,
        namespace="",
        resync=15,
        stop=objs.stop,
        handle=lambda kind, obj: seen.append(kind),
        clock=lambda: float(next(now)),
    )
    assert objs.listed == 2
    assert seen == ["ADDED", "ADDED"]
