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

import dataclasses
import pathlib
import re
from typing import TYPE_CHECKING, Any

import yaml

from csi_vm import errors, fields

if TYPE_CHECKING:
    import pydantic

# Names become parts of object names and file names: keep them plain.
NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"
_NAME = re.compile(NAME_PATTERN)

# The models are frozen dataclasses checked by `fields`, not pydantic models:
# every VM command reads the config, and pydantic's import alone cost `vm list`
# more start-up than the rest of its work.


@dataclasses.dataclass(frozen=True, repr=False)
class Secret:
    """A CSI secret: its repr and str never show the value, so logs and errors cannot."""

    value: str

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def get_secret_value(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True, kw_only=True)
class DriverConfig:
    endpoint: str
    nodes: dict[str, str] = dataclasses.field(default_factory=dict)
    #: `assert:` in the file
    asserted: tuple[str, ...] = ()
    timeout: float = 10.0
    modify_parameters: dict[str, str] = dataclasses.field(default_factory=dict)
    #: CSI secrets (the `secrets` field of requests), kept out of reprs
    secrets: dict[str, Secret] = dataclasses.field(default_factory=dict)

    def secret_values(self) -> dict[str, str]:
        """The plain secrets, for building CSI requests and nothing else."""
        return {k: v.get_secret_value() for k, v in self.secrets.items()}


#: the libvirt URI of the node csi-vm runs on, when the config names none
DEFAULT_LIBVIRT_URI = "qemu:///system"


@dataclasses.dataclass(frozen=True, kw_only=True)
class NodeConfig:
    """A node VMs run on: its libvirt daemon, and where its disks go on a storage migration."""

    libvirt: str = DEFAULT_LIBVIRT_URI
    #: the driver whose volumes this node reaches, for disks moved here by a
    #: storage migration (node-local storage); empty: the disk's own driver
    driver: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    drivers: dict[str, DriverConfig] = dataclasses.field(default_factory=dict)
    #: the node this csi-vm runs on: host copies stage volumes here, through
    #: each driver's node endpoint for it (the controller endpoint if none)
    node: str = "local"
    #: nodes VMs run on, by name; the node above is always one of them
    nodes: dict[str, NodeConfig] = dataclasses.field(default_factory=dict)

    def node_config(self, name: str) -> NodeConfig:
        found = self.nodes.get(name)
        if found is not None:
            return found
        if name == self.node:
            return NodeConfig()
        known = ", ".join(sorted({self.node, *self.nodes}))
        raise errors.InvalidInput(f"no node named {name!r} in the config", hint=f"known: {known}")


def parse(data: object) -> Config:
    """The config a parsed YAML document describes; `fields.Invalid` names every problem."""
    problems = fields.Problems()
    top = fields.mapping(data, (), problems, shape="drivers: {NAME: {endpoint: ...}}")
    if top is None:
        raise fields.Invalid(problems.found)
    fields.known_keys(top, ("drivers", "node", "nodes"), (), problems)
    drivers = _named(top.get("drivers", {}), "drivers", problems, shape="NAME: {endpoint: ...}")
    nodes = _named(top.get("nodes", {}), "nodes", problems, shape="NAME: {libvirt: URI}")
    found = Config(
        drivers={name: _driver(v, ("drivers", name), problems) for name, v in drivers.items()},
        node=_name(top.get("node", "local"), ("node",), problems, what="node name"),
        nodes={name: _node(v, ("nodes", name), problems) for name, v in nodes.items()},
    )
    problems.check()
    return found


_DRIVER_KEYS = ("endpoint", "nodes", "assert", "timeout", "modify_parameters", "secrets")
#: seconds each CSI call may take, unless the config says otherwise
_TIMEOUT = 10.0


def _driver(value: object, where: fields.Where, problems: fields.Problems) -> DriverConfig:
    data = fields.mapping(value, where, problems, shape="endpoint: unix:///PATH, ...")
    if data is None:
        return DriverConfig(endpoint="")
    fields.known_keys(data, _DRIVER_KEYS, where, problems)
    nodes = fields.text_map(data.get("nodes", {}), (*where, "nodes"), problems)
    for name in nodes:
        _name(name, (*where, "nodes"), problems, what="node name")
    secrets = fields.text_map(data.get("secrets", {}), (*where, "secrets"), problems)
    timeout = data.get("timeout", _TIMEOUT)
    return DriverConfig(
        endpoint=_endpoint(data, (*where, "endpoint"), problems),
        nodes=nodes,
        asserted=fields.texts(data.get("assert", []), (*where, "assert"), problems),
        timeout=fields.seconds(timeout, (*where, "timeout"), problems, limits=(0, 3600)),
        modify_parameters=fields.text_map(
            data.get("modify_parameters", {}), (*where, "modify_parameters"), problems
        ),
        secrets={key: Secret(value) for key, value in secrets.items()},
    )


_ENDPOINT = "the driver's CSI socket, e.g. unix:///run/csi/csi.sock"


def _endpoint(data: dict[str, Any], where: fields.Where, problems: fields.Problems) -> str:
    if "endpoint" not in data:
        problems.add(where, f"missing: give {_ENDPOINT}")
        return ""
    return fields.text(data["endpoint"], where, problems, needs=_ENDPOINT)


def _node(value: object, where: fields.Where, problems: fields.Problems) -> NodeConfig:
    data = fields.mapping(value, where, problems, shape="libvirt: URI, driver: NAME")
    if data is None:
        return NodeConfig()
    fields.known_keys(data, ("libvirt", "driver"), where, problems)
    libvirt = data.get("libvirt", DEFAULT_LIBVIRT_URI)
    return NodeConfig(
        libvirt=fields.text(
            libvirt, (*where, "libvirt"), problems, needs="its libvirt URI, e.g. qemu:///system"
        ),
        driver=fields.text(data.get("driver", ""), (*where, "driver"), problems),
    )


def _named(value: object, key: str, problems: fields.Problems, *, shape: str) -> dict[str, Any]:
    """The mapping under a top-level key whose keys name drivers or nodes: each name checked."""
    data = fields.mapping(value, (key,), problems, shape=shape) or {}
    what = "driver name" if key == "drivers" else "node name"
    for name in data:
        _name(name, (key,), problems, what=what)
    return data


def _name(value: object, where: fields.Where, problems: fields.Problems, *, what: str) -> str:
    # A bad name is reported where the mapping holding it is, as before.
    name = fields.text(value, where, problems)
    try:
        return check_name(name, what=what) if isinstance(value, str) else name
    except ValueError as err:
        problems.add(where, str(err))
        return name


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
        return parse(data)
    except fields.Invalid as err:
        raise errors.InvalidInput(f"{path}: {err}") from err


def describe(err: pydantic.ValidationError) -> str:
    """A pydantic error (of the VM spec) in the config's form: 'field.path: message; ...'."""
    parts = []
    for problem in err.errors():
        message = str(problem["msg"]).removeprefix("Value error, ")
        parts.append(f"{fields.place(tuple(problem['loc']))}: {message}")
    return "; ".join(parts)


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
