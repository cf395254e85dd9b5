"""Where csi-vm's Kubernetes credentials come from.

The same order as kubectl, so csi-vm talks to the cluster the user expects:
an explicit ``--kubeconfig FILE``, then ``$KUBECONFIG``, then
``~/.kube/config``, then the service account of the pod we run in.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Mapping

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from csi_vm import errors

#: Set by the kubelet in every pod; their presence means "running in a cluster".
IN_CLUSTER_ENV = ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")

# The client's loaders carry no annotations; these typed names keep mypy
# --strict on this module without blanket ignores.
_load_kube_config: Callable[..., None] = k8s_config.load_kube_config
_load_incluster_config: Callable[..., None] = k8s_config.load_incluster_config

_NO_CONFIG_HINT = (
    "give --kubeconfig FILE, set KUBECONFIG, create ~/.kube/config, "
    "or run inside a pod with a service account"
)


def load(
    *,
    kubeconfig: pathlib.Path | None,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: pathlib.Path | None = None,
) -> k8s.Configuration:
    """A client configuration of its own (the client's global default stays untouched)."""
    env = os.environ if environ is None else environ
    source = _kubeconfig_source(kubeconfig, env, home or pathlib.Path.home())
    cfg = k8s.Configuration()
    try:
        if source is not None:
            # persist_config=False: reading a cluster must never rewrite the
            # user's kubeconfig (the loader would store refreshed tokens).
            _load_kube_config(
                config_file=source, context=context, client_configuration=cfg, persist_config=False
            )
        elif all(env.get(name) for name in IN_CLUSTER_ENV):
            _load_incluster_config(client_configuration=cfg)
        else:
            raise errors.InvalidInput("no Kubernetes configuration found", hint=_NO_CONFIG_HINT)
    except k8s_config.ConfigException as err:
        where = source or "the pod's service account"
        raise errors.InvalidInput(
            f"cannot use Kubernetes configuration from {where}: {err}", hint=_NO_CONFIG_HINT
        ) from err
    # Retries happen in csi-vm's one retry loop, where they are logged; the
    # connection pool's own silent retries would multiply them.
    cfg.retries = False
    return cfg


def _kubeconfig_source(
    explicit: pathlib.Path | None, env: Mapping[str, str], home: pathlib.Path
) -> str | None:
    if explicit is not None:
        if not explicit.is_file():
            raise errors.InvalidInput(f"kubeconfig {explicit} does not exist or is not a file")
        return str(explicit)
    if env.get("KUBECONFIG"):
        # May be a list of files; the loader merges them as kubectl does.
        return env["KUBECONFIG"]
    default = home / ".kube" / "config"
    return str(default) if default.is_file() else None
