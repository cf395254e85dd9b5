"""A stack of undo actions, run newest first at teardown."""

from __future__ import annotations

from collections.abc import Callable

import grpc


class UndoLog:
    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], object], tuple[grpc.StatusCode, ...]]] = []

    def add(
        self, what: str, action: Callable[[], object], tolerate: tuple[grpc.StatusCode, ...] = ()
    ) -> None:
        """Remember `action`; at teardown, failing with a code in `tolerate` is fine."""
        self._actions.append((what, action, tolerate))

    def run(self) -> list[str]:
        """Run every action, newest first; return those that failed, and how."""
        problems: list[str] = []
        while self._actions:
            what, action, tolerate = self._actions.pop()
            try:
                action()
            except grpc.RpcError as err:
                if err.code() not in tolerate:
                    problems.append(f"{what}: {err.code().name}: {err.details()}")
        return problems
