"""kubectl and helm against the test cluster, for the end-to-end tests.

The tests drive the cluster the way a user does, with the pinned kubectl
and the real helm binary, and read objects back as JSON.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time
from collections.abc import Callable
from typing import Any

import yaml

from tests.support import helmbin
from tests.support.cluster import lab, layout

Json = dict[str, Any]


class CommandFailed(AssertionError):
    """kubectl or helm exited non-zero; the message has its stderr."""


class Kube:
    def __init__(self, where: layout.Layout) -> None:
        self.where = where

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.where.admin_kubeconfig)}

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(lab.kube_bin() / "kubectl"), *args]
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            input=stdin,
            timeout=timeout,
            env=self.env(),
            check=False,
        )
        if check and done.returncode != 0:
            raise CommandFailed(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done

    def helm(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(helmbin.helm()), *args]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=self.env(), check=False
        )
        if check and done.returncode != 0:
            raise CommandFailed(f"helm {' '.join(args)}: {done.stderr.strip()}")
        return done

    def apply(self, *docs: Json, namespace: str | None = None) -> subprocess.CompletedProcess[str]:
        ns = ["-n", namespace] if namespace else []
        return self.run(*ns, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))

    def get(self, kind: str, name: str = "", *, namespace: str | None = None) -> Json:
        ns = ["-n", namespace] if namespace else []
        args = [*ns, "get", kind, *([name] if name else []), "-o", "json"]
        return dict(json.loads(self.run(*args).stdout))

    def maybe(self, kind: str, name: str, *, namespace: str | None = None) -> Json | None:
        ns = ["-n", namespace] if namespace else []
        done = self.run(*ns, "get", kind, name, "-o", "json", "--ignore-not-found", check=False)
        return dict(json.loads(done.stdout)) if done.stdout.strip() else None

    def items(self, kind: str, *, namespace: str | None = None, selector: str = "") -> list[Json]:
        ns = ["-n", namespace] if namespace else ["-A"]
        sel = ["-l", selector] if selector else []
        return list(json.loads(self.run(*ns, "get", kind, *sel, "-o", "json").stdout)["items"])

    def wait_for(
        self,
        what: str,
        check: Callable[[], Any],
        *,
        timeout: float = 300,
        explain: Callable[[], str] = lambda: "",
    ) -> Any:
        """Poll ``check`` until it returns something truthy; fail with ``explain()``."""
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:.0f} s\n{explain()}")
            time.sleep(1)

    def describe(self, *args: str) -> str:
        return self.run("describe", *args, check=False).stdout[-6000:]

    def logs(self, *args: str) -> str:
        """A container's whole output (for an explanation, cut it yourself)."""
        return self.run("logs", *args, check=False).stdout


def chart_dir() -> pathlib.Path:
    return lab.PROJECT / "charts" / "csi-vm"
