"""The chart's CRDs take no name KubeVirt or Kubernetes already uses.

kubectl resolves a plural, singular, short name or kind across every API
group it discovers: a name shared with KubeVirt (which csi-vm runs next to)
or with a built-in resource makes ``kubectl get <name>`` pick one of the two
silently. The lists below are written out on purpose, so a rename on either
side shows up here as a diff to read.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from csi_vm.crd import kinds

pytestmark = pytest.mark.timeout(10)

CRDS = pathlib.Path(__file__).resolve().parents[3] / "charts" / "csi-vm" / "crds"

#: KubeVirt's kinds (kubevirt.io and its snapshot, clone, export, pool,
#: instancetype, migrations and CDI groups), lower-cased.
KUBEVIRT_KINDS = {
    "kubevirt",
    "virtualmachine",
    "virtualmachineinstance",
    "virtualmachineinstancemigration",
    "virtualmachineinstancereplicaset",
    "virtualmachineinstancepreset",
    "virtualmachinesnapshot",
    "virtualmachinesnapshotcontent",
    "virtualmachinerestore",
    "virtualmachineclone",
    "virtualmachineexport",
    "virtualmachinepool",
    "virtualmachineinstancetype",
    "virtualmachineclusterinstancetype",
    "virtualmachinepreference",
    "virtualmachineclusterpreference",
    "migrationpolicy",
    "cdi",
    "cdiconfig",
    "datavolume",
    "datasource",
    "dataimportcron",
    "storageprofile",
    "objecttransfer",
    "volumeimportsource",
    "volumeuploadsource",
    "volumeclonesource",
}
KUBEVIRT_PLURALS = {
    "kubevirts",
    "virtualmachines",
    "virtualmachineinstances",
    "virtualmachineinstancemigrations",
    "virtualmachineinstancereplicasets",
    "virtualmachineinstancepresets",
    "virtualmachinesnapshots",
    "virtualmachinesnapshotcontents",
    "virtualmachinerestores",
    "virtualmachineclones",
    "virtualmachineexports",
    "virtualmachinepools",
    "virtualmachineinstancetypes",
    "virtualmachineclusterinstancetypes",
    "virtualmachinepreferences",
    "virtualmachineclusterpreferences",
    "migrationpolicies",
    "cdis",
    "cdiconfigs",
    "datavolumes",
    "datasources",
    "dataimportcrons",
    "storageprofiles",
    "objecttransfers",
    "volumeimportsources",
    "volumeuploadsources",
    "volumeclonesources",
}
KUBEVIRT_SHORT_NAMES = {
    "kv",
    "kvs",
    "vm",
    "vms",
    "vmi",
    "vmis",
    "vmim",
    "vmims",
    "vmirs",
    "vmirss",
    "vmipreset",
    "vmipresets",
    "vmsnapshot",
    "vmsnapshots",
    "vmsnapshotcontent",
    "vmsnapshotcontents",
    "vmrestore",
    "vmrestores",
    "vmclone",
    "vmclones",
    "vmexport",
    "vmexports",
    "vmpool",
    "vmpools",
    "vminstancetype",
    "vminstancetypes",
    "vmf",
    "vmfs",
    "vmclusterinstancetype",
    "vmclusterinstancetypes",
    "vmcf",
    "vmcfs",
    "vmpref",
    "vmprefs",
    "vmp",
    "vmps",
    "vmclusterpref",
    "vmclusterprefs",
    "vmcp",
    "vmcps",
    "dv",
    "dvs",
    "das",
    "dic",
    "dics",
    "ot",
    "ots",
}
#: Built-in resources (plurals) of a current Kubernetes, plus the
#: external-snapshotter's, which csi-vm needs for native snapshots.
BUILTIN_PLURALS = {
    "bindings",
    "componentstatuses",
    "configmaps",
    "endpoints",
    "events",
    "limitranges",
    "namespaces",
    "nodes",
    "persistentvolumeclaims",
    "persistentvolumes",
    "pods",
    "podtemplates",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "serviceaccounts",
    "services",
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
    "customresourcedefinitions",
    "apiservices",
    "controllerrevisions",
    "daemonsets",
    "deployments",
    "replicasets",
    "statefulsets",
    "selfsubjectreviews",
    "tokenreviews",
    "localsubjectaccessreviews",
    "selfsubjectaccessreviews",
    "selfsubjectrulesreviews",
    "subjectaccessreviews",
    "horizontalpodautoscalers",
    "cronjobs",
    "jobs",
    "certificatesigningrequests",
    "clustertrustbundles",
    "leases",
    "leasecandidates",
    "endpointslices",
    "flowschemas",
    "prioritylevelconfigurations",
    "ingressclasses",
    "ingresses",
    "networkpolicies",
    "ipaddresses",
    "servicecidrs",
    "runtimeclasses",
    "poddisruptionbudgets",
    "clusterrolebindings",
    "clusterroles",
    "rolebindings",
    "roles",
    "priorityclasses",
    "csidrivers",
    "csinodes",
    "csistoragecapacities",
    "storageclasses",
    "volumeattachments",
    "volumeattributesclasses",
    "deviceclasses",
    "resourceclaims",
    "resourceclaimtemplates",
    "resourceslices",
    "storageversionmigrations",
    "volumesnapshots",
    "volumesnapshotclasses",
    "volumesnapshotcontents",
    "volumegroupsnapshots",
    "volumegroupsnapshotclasses",
    "volumegroupsnapshotcontents",
}
BUILTIN_SHORT_NAMES = {
    "cs",
    "cm",
    "ep",
    "ev",
    "limits",
    "ns",
    "no",
    "pvc",
    "pv",
    "po",
    "rc",
    "quota",
    "sa",
    "svc",
    "crd",
    "crds",
    "ds",
    "deploy",
    "rs",
    "sts",
    "hpa",
    "cj",
    "csr",
    "ing",
    "netpol",
    "ip",
    "pdb",
    "pc",
    "sc",
    "vac",
    "vs",
    "vsclass",
    "vsclasses",
    "vsc",
    "vscs",
    "vgs",
    "vgsclass",
    "vgsc",
}


def _singulars(plural: str) -> set[str]:
    """Each way English may have made ``plural``; taking one too many costs nothing."""
    found = {plural[:-1], plural[:-2]} if plural.endswith("es") else {plural[:-1]}
    if plural.endswith("ies"):
        found.add(plural[:-3] + "y")
    return found


#: Every name a csi-vm CRD must not take, lower-cased: kinds and singulars
#: are the same word in lower case, so one set covers both.
TAKEN = (
    KUBEVIRT_KINDS
    | KUBEVIRT_PLURALS
    | KUBEVIRT_SHORT_NAMES
    | BUILTIN_PLURALS
    | {s for p in BUILTIN_PLURALS for s in _singulars(p)}
    | BUILTIN_SHORT_NAMES
)


def _crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(CRDS.glob("*.yaml"))]


def _names(crd: dict[str, Any]) -> dict[str, list[str]]:
    names = crd["spec"]["names"]
    return {
        "kind": [names["kind"].lower()],
        "plural": [names["plural"]],
        "singular": [names["singular"]],
        "shortNames": list(names.get("shortNames") or ()),
    }


@pytest.mark.parametrize("crd", _crds(), ids=lambda c: c["metadata"]["name"])
def test_no_name_is_kubevirts_or_a_built_in_one(crd: dict[str, Any]) -> None:
    for field, values in _names(crd).items():
        clashes = sorted(set(values) & TAKEN)
        assert not clashes, f"{crd['metadata']['name']}: {field} {clashes} is taken"


@pytest.mark.parametrize("crd", _crds(), ids=lambda c: c["metadata"]["name"])
def test_every_crd_names_itself_fully_and_stays_out_of_all(crd: dict[str, Any]) -> None:
    names = crd["spec"]["names"]
    assert names["plural"] and names["singular"] and names["shortNames"]
    # `kubectl get all` is for a namespace's workloads; KubeVirt's VMs are in
    # it, csi-vm's objects are listed with `kubectl get csi-vm`.
    assert names["categories"] == ["csi-vm"]
    assert crd["metadata"]["name"] == f"{names['plural']}.{kinds.GROUP}"


def test_no_two_crds_share_a_name() -> None:
    seen: dict[str, str] = {}
    for crd in _crds():
        for values in _names(crd).values():
            for value in values:
                other = seen.setdefault(value, crd["metadata"]["name"])
                # A CRD's kind and singular are the same word; only another CRD clashes.
                assert other == crd["metadata"]["name"], f"{value}: {other} and the next"


def test_the_controller_uses_the_chart_names() -> None:
    in_chart = {
        (c["spec"]["names"]["plural"], c["spec"]["names"]["kind"], c["spec"]["scope"])
        for c in _crds()
    }
    in_code = {
        (res.plural, kind, "Namespaced" if res.namespaced else "Cluster")
        for res, kind in kinds.KIND.items()
    }
    assert in_code == in_chart
