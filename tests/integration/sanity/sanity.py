"""Run csi-sanity against one endpoint and read its JUnit report."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import xml.etree.ElementTree as ET

#: Volumes small enough for any CI disk (the default is 10 GiB, sparse but
#: checked against free space) and still above ext4's minimum.
VOLUME_SIZE = 64 << 20
EXPANDED_SIZE = 128 << 20
#: A modification the local driver documents as valid.
MUTABLE_PARAMETERS = "tier: fast\n"
#: csi-sanity runs about a hundred specs in seconds; this only stops a hang.
TIMEOUT_S = 600


@dataclasses.dataclass(frozen=True)
class Outcome:
    returncode: int
    passed: tuple[str, ...]
    failed: dict[str, str]  # spec name -> failure message
    skipped: tuple[str, ...]
    pending: tuple[str, ...]
    output: str

    def summary(self) -> str:
        return (
            f"{len(self.passed)} passed, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped, {len(self.pending)} pending"
        )


def run(binary: pathlib.Path, endpoint: str, work: pathlib.Path, *, access_type: str) -> Outcome:
    work.mkdir(parents=True, exist_ok=True)
    mutable = work / "mutable-parameters.yaml"
    mutable.write_text(MUTABLE_PARAMETERS)
    report = work / "junit.xml"
    done = subprocess.run(
        [
            str(binary),
            f"-csi.endpoint={endpoint}",
            f"-csi.mountdir={work / 'target'}",
            f"-csi.stagingdir={work / 'staging'}",
            f"-csi.testvolumeaccesstype={access_type}",
            f"-csi.testvolumesize={VOLUME_SIZE}",
            f"-csi.testvolumeexpandsize={EXPANDED_SIZE}",
            f"-csi.testvolumemutableparameters={mutable}",
            f"-ginkgo.junit-report={report}",
            "-ginkgo.no-color",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    if not report.is_file():
        raise AssertionError(f"csi-sanity wrote no report (exit {done.returncode}):\n{output}")
    return _read(report, done.returncode, output)


def gist(message: str) -> str:
    """The line of a Gomega failure that says what went wrong (the gRPC error if any)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    grpc = [line for line in lines if "rpc error:" in line]
    return (grpc or lines or ["(no message)"])[0][:300]


def _read(report: pathlib.Path, returncode: int, output: str) -> Outcome:
    cases: dict[str, list[str]] = {"passed": [], "skipped": [], "pending": []}
    failed: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.attrib["name"].removeprefix("[It] ")
        status = case.attrib.get("status", "")
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None or status not in cases:
            text = problem.attrib.get("message", "") if problem is not None else status
            failed[name] = text
        else:
            cases[status].append(name)
    return Outcome(
        returncode=returncode,
        passed=tuple(cases["passed"]),
        failed=failed,
        skipped=tuple(cases["skipped"]),
        pending=tuple(cases["pending"]),
        output=output,
    )
