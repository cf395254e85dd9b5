"""Build the pinned Go programs once per version into a cache.

No third-party source is kept in the project: for each program a tiny
wrapper module is written into the cache that requires the upstream module at
its pinned version and repeats the upstream go.mod's requirements. Upstream
replace directives that point into the upstream tree (Kubernetes' staging
modules, a client module beside a sidecar) cannot work from the module proxy,
so they are pinned to the published module of the same release instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

from tests.support.cluster import pins

_REPLACE_LOCAL = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+\S+)?\s+=>\s+(\.\.?/\S*)\s*$")


class BuildFailed(RuntimeError):
    """A Go build failed: the message names the program and the log."""


def cache_root() -> pathlib.Path:
    root = os.environ.get("CSI_VM_CLUSTER_CACHE")
    return pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "csi-vm" / "cluster"


def bin_dir(program: pins.GoProgram) -> pathlib.Path:
    return cache_root() / f"{program.name}-{program.version}" / "bin"


def built(program: pins.GoProgram) -> bool:
    where = bin_dir(program)
    return all((where / binary).is_file() for _, binary in program.packages)


def go_binary() -> str:
    """The go command: on PATH, or where this machine kind installs it."""
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not pathlib.Path(found).is_file():
        raise BuildFailed("no Go toolchain: install Go 1.24 or newer to build the cluster")
    return found


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries run in images that hold nothing but themselves.
    env["CGO_ENABLED"] = "0"
    # A module whose go.mod asks for a newer Go gets it from the module proxy.
    env["GOTOOLCHAIN"] = "auto"
    env["GOFLAGS"] = "-mod=mod -buildvcs=false"
    return env


def _download(module: str, version: str) -> dict[str, str]:
    done = subprocess.run(
        [go_binary(), "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        env=go_env(),
        cwd=cache_root(),
        check=False,
    )
    info: dict[str, str] = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "Error" in info:
        raise BuildFailed(f"cannot download {module}@{version}: {info.get('Error') or done.stderr}")
    return info


def module_dir(module: str, version: str) -> pathlib.Path:
    """The unpacked upstream module (downloaded on first use)."""
    cache_root().mkdir(parents=True, exist_ok=True)
    return pathlib.Path(_download(module, version)["Dir"])


def _required(gomod: str) -> set[str]:
    """Module paths the go.mod requires (single lines and blocks alike)."""
    found = set()
    for line in gomod.splitlines():
        parts = line.split()
        if parts[:1] == ["require"] and len(parts) >= 3:
            found.add(parts[1])
        elif (
            len(parts) >= 2 and parts[1].startswith("v") and not line.startswith(("go ", "module"))
        ):
            found.add(parts[0])
    return found


def _pin_local(program: pins.GoProgram, line: str, *, required: set[str]) -> str | None:
    """An upstream replace into its own tree, pinned to a published module.

    A replace of a module the build does not require is a guard against
    depending on it (etcd points such modules at a missing directory): it is
    dropped, since nothing can pull the module in from here.
    """
    match = _REPLACE_LOCAL.match(line)
    if not match:
        return line
    target = match.group(1)
    if target not in required:
        return None
    version = pins.STAGING if program is pins.KUBE else program.version
    prefix = "replace " if line.lstrip().startswith("replace") else "\t"
    return f"{prefix}{target} => {target} {version}"


def _wrapper_gomod(program: pins.GoProgram, upstream: str) -> str:
    lines = []
    required = _required(upstream)
    for line in upstream.splitlines():
        if line.startswith("module "):
            lines.append(f"module csivm.build/{program.name}")
            lines.append(f"\nrequire {program.module} {program.version}\n")
        elif line.startswith(("toolchain", "godebug", "tool ")):
            continue
        else:
            pinned = _pin_local(program, line, required=required)
            if pinned is not None:
                lines.append(pinned)
    return "\n".join(lines) + "\n"


def _prepare(program: pins.GoProgram) -> pathlib.Path:
    upstream = module_dir(program.module, program.version)
    work = cache_root() / "src" / f"{program.name}-{program.version}"
    work.mkdir(parents=True, exist_ok=True)
    gomod = _wrapper_gomod(program, (upstream / "go.mod").read_text())
    (work / "go.mod").write_text(gomod)
    if (upstream / "go.sum").is_file():
        shutil.copyfile(upstream / "go.sum", work / "go.sum")
    if program.main_source:
        (work / "main.go").write_text(program.main_source)
    else:
        # Keeps the upstream module in the build list for `go build pkg`.
        (work / "tools.go").write_text(
            "//go:build tools\n\npackage tools\n\n"
            + "".join(f'import _ "{pkg}"\n' for pkg, _ in program.packages)
        )
    return work


def build(program: pins.GoProgram, *, log: pathlib.Path) -> pathlib.Path:
    """Build `program` unless its binaries are cached; return its bin dir."""
    target = bin_dir(program)
    if built(program):
        return target
    work = _prepare(program)
    staging = target.with_name("bin.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    flags = " ".join(("-s", "-w", *program.ldflags))
    # One package: name its binary; several: go names each after its package.
    single = len(program.packages) == 1
    out = staging / program.packages[0][1] if single else f"{staging}/"
    cmd = [go_binary(), "build", "-trimpath", "-ldflags", flags, "-o", str(out)]
    cmd += [pkg for pkg, _ in program.packages]
    with log.open("a") as out:
        out.write(f"== {program.name} {program.version}: {' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(cmd, cwd=work, env=go_env(), stdout=out, stderr=out, check=False)
    if done.returncode != 0:
        raise BuildFailed(f"building {program.name} {program.version} failed: see {log}")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def ensure(program: pins.GoProgram) -> pathlib.Path:
    """`build` for callers outside `scripts/cluster up`, one at a time per program.

    Test sessions and scripts/check may ask for the same program at once; the
    lock keeps them from writing one bin.partial together.
    """
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{program.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build(program, log=root / f"{program.name}-build.log")


def build_all(*, log: pathlib.Path, say: object = print) -> dict[str, pathlib.Path]:
    """Every pinned program, built or taken from the cache."""
    found: dict[str, pathlib.Path] = {}
    for program in pins.ALL:
        cached = built(program)
        if callable(say):
            say(f"{program.name} {program.version}: {'cached' if cached else 'building'}")
        found[program.name] = build(program, log=log)
    return found


def main(names: list[str]) -> int:
    """Build the named host tools (pins.TOOLS), or with no names the whole cluster."""
    if not names:
        cache_root().mkdir(parents=True, exist_ok=True)
        build_all(log=cache_root() / "build.log")
        return 0
    tools = {program.name: program for program in pins.TOOLS}
    if unknown := [name for name in names if name not in tools]:
        print(
            f"error: unknown tool {', '.join(unknown)}: choose from {', '.join(tools)}",
            file=sys.stderr,
        )
        return 2
    for name in names:
        try:
            print(f"{name}: {ensure(tools[name])}", flush=True)
        except BuildFailed as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
