"""The csi-vm config file: which CSI drivers exist and how to reach them.

    drivers:
      fast-ssd:
        endpoint: unix:///run/csi/fast.sock       # controller service
        nodes:                                    # node service per node
          node-a: unix:///run/csi/fast.sock
        assert: [multi_node_shared]               # operator-asserted features
        timeout: 10                               # seconds per CSI call
        modify_parameters: {iops: "3000"}         # for the ModifyVolume check
        secrets: {username: admin, password: ...} # CSI secrets sent with each call
    node: node-a                                  # the node csi-vm runs on
    nodes:                                        # where VMs run (optional)
      node-a: {libvirt: "qemu:///system"}
      node-b: {libvirt: "qemu+ssh://b/system", driver: fast-ssd-b}

Unknown keys are refused, so a typo never silently changes behaviour.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pydantic
import yaml

from csi_vm import errors

# Names become parts of object names and file names: keep them plain.
NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"
_NAME = re.compile(NAME_PATTERN)


class DriverConfig(pydantic.BaseModel):
    # defer_build: validators are built when a config is first read, not at
    # import, which `--help` of the commands that read one would pay for.
    model_config = pydantic.ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, defer_build=True
    )

    endpoint: str = pydantic.Field(min_length=1)
    nodes: dict[str, str] = {}
    asserted: tuple[str, ...] = pydantic.Field(default=(), alias="assert")
    timeout: float = pydantic.Field(default=10.0, gt=0, le=3600)
    modify_parameters: dict[str, str] = {}
    #: CSI secrets (the `secrets` field of requests); SecretStr keeps them out
    #: of reprs, validation errors and dumps
    secrets: dict[str, pydantic.SecretStr] = {}

    def secret_values(self) -> dict[str, str]:
        """The plain secrets, for building CSI requests and nothing else."""
        return {k: v.get_secret_value() for k, v in self.secrets.items()}

    @pydantic.field_validator("nodes")
    @classmethod
    def _node_names(cls, nodes: dict[str, str]) -> dict[str, str]:
        for name in nodes:
            check_name(name, what="node name")
        return nodes


#: the libvirt URI of the node csi-vm runs on, when the config names none
DEFAULT_LIBVIRT_URI = "qemu:///system"


class NodeConfig(pydantic.BaseModel):
    """A node VMs run on: its libvirt daemon, and where its disks go on a storage migration."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", defer_build=True)

    libvirt: str = pydantic.Field(default=DEFAULT_LIBVIRT_URI, min_length=1)
    #: the driver whose volumes this node reaches, for disks moved here by a
    #: storage migration (node-local storage); empty: the disk's own driver
    driver: str = ""


class Config(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", defer_build=True)

    drivers: dict[str, DriverConfig] = {}
    #: the node this csi-vm runs on: host copies stage volumes here, through
    #: each driver's node endpoint for it (the controller endpoint if none)
    node: str = "local"
    #: nodes VMs run on, by name; the node above is always one of them
    nodes: dict[str, NodeConfig] = {}

    def node_config(self, name: str) -> NodeConfig:
        found = self.nodes.get(name)
        if found is not None:
            return found
        if name == self.node:
            return NodeConfig()
        known = ", ".join(sorted({self.node, *self.nodes}))
        raise errors.InvalidInput(f"no node named {name!r} in the config", hint=f"known: {known}")

    @pydantic.field_validator("nodes")
    @classmethod
    def _node_names(cls, nodes: dict[str, NodeConfig]) -> dict[str, NodeConfig]:
        for name in nodes:
            check_name(name, what="node name")
        return nodes

    @pydantic.field_validator("node")
    @classmethod
    def _node_name(cls, node: str) -> str:
        return check_name(node, what="node name")

    @pydantic.field_validator("drivers")
    @classmethod
    def _driver_names(cls, drivers: dict[str, DriverConfig]) -> dict[str, DriverConfig]:
        for name in drivers:
            check_name(name, what="driver name")
        return drivers


def check_name(name: str, *, what: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} must be 1-63 lowercase letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return name


def require_name(name: str, *, what: str) -> str:
    """`check_name` for names given on the command line: a user error, not a bug."""
    try:
        return check_name(name, what=what)
    except ValueError as err:
        raise errors.InvalidInput(str(err)) from err


def load(path: pathlib.Path) -> Config:
    """Read and validate a config file; every problem names the file and field."""
    data = _read_yaml(path)
    try:
        return Config.model_validate(data)
    except pydantic.ValidationError as err:
        raise errors.InvalidInput(f"{path}: {describe(err)}") from err


def describe(err: pydantic.ValidationError) -> str:
    """One line per problem: 'field.path: message'."""
    parts = []
    for problem in err.errors():
        where = ".".join(_loc_part(p) for p in problem["loc"]) or "(top level)"
        message = str(problem["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _loc_part(part: object) -> str:
    # Mapping keys are user text: quote any that could break the line or hide.
    text = str(part)
    return text if text.isprintable() and " " not in text else repr(text)


def one_line(err: Exception) -> str:
    """An error's text on one line: YAML errors point at the spot on a second line."""
    return " ".join(str(err).split())


def _read_yaml(path: pathlib.Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise errors.InvalidInput(f"config file {path} does not exist") from err
    except (OSError, UnicodeDecodeError) as err:
        raise errors.InvalidInput(f"cannot read config file {path}: {err}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise errors.InvalidInput(f"{path} is not valid YAML: {one_line(err)}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise errors.InvalidInput(f"{path}: the top level must be a mapping with a 'drivers' key")
    return data
