"""Every API call the controller makes, as RBAC rules.

The chart's ClusterRole must grant exactly these (a test compares them), so
a new call here without a chart change, or a chart grant nobody uses, fails
the tests. Keep the list in step with the code: each entry says who uses it.
"""

from __future__ import annotations

from csi_vm.crd import rbac

Rule = rbac.Rule
_rule = rbac.rule


_WATCHED = ("get", "list", "watch")

CONTROLLER: tuple[Rule, ...] = (
    # run: list and watch each custom resource; reconcile_*: status and owned children;
    # expand: switch a VM disk to its larger copy (patch)
    _rule("csi-vm.io", "csivms", *_WATCHED, "create", "patch"),
    # status_write: a status write that met a conflict reads the object again
    _rule("csi-vm.io", "csivmsnapshots", *_WATCHED),
    _rule("csi-vm.io", "csivmrestores", *_WATCHED),
    _rule("csi-vm.io", "csivmclones", *_WATCHED),
    _rule("csi-vm.io", "csivmmigrations", *_WATCHED),
    # reconcile_report: one report per StorageClass; strategy: read them
    _rule("csi-vm.io", "storagecapabilityreports", "get", "create"),
    _rule("csi-vm.io", "csivms/status", "patch"),
    _rule("csi-vm.io", "csivmsnapshots/status", "patch"),
    _rule("csi-vm.io", "csivmrestores/status", "patch"),
    _rule("csi-vm.io", "csivmclones/status", "patch"),
    _rule("csi-vm.io", "csivmmigrations/status", "patch"),
    _rule("csi-vm.io", "storagecapabilityreports/status", "patch"),
    # storage: the backend's storage objects
    _rule("", "persistentvolumeclaims", "get", "create", "patch", "delete"),
    # placement: a copy Job runs where its source's volume can be reached
    _rule("", "persistentvolumes", "get"),
    _rule("snapshot.storage.k8s.io", "volumesnapshots", "get", "create", "delete"),
    # verify: holder Pods that let WaitForFirstConsumer classes bind probe PVCs;
    # reconcile_vm, reconcile_migration: the Pods that publish a VM's disks on its node;
    # launchpod: a running VM's launcher Pod, deleted when it stops;
    # podmigration: a migration's target launcher Pod, handed to the VM after it
    _rule("", "pods", "get", "create", "patch", "delete"),
    _rule("batch", "jobs", "get", "create"),
    # reconcile_vm, reconcile_migration: a VM's or a migration's node must exist
    _rule("", "nodes", "get"),
    # events: what the controller did and why
    _rule("", "events", "create"),
    # reconcile_report: what the cluster declares per StorageClass
    # storage: a restore or clone on a WaitForFirstConsumer class binds at the VM's start
    _rule("storage.k8s.io", "storageclasses", "get", "list", "watch"),
    _rule("storage.k8s.io", "csidrivers", "list"),
    _rule("storage.k8s.io", "csinodes", "list"),
    _rule("snapshot.storage.k8s.io", "volumesnapshotclasses", "list"),
)

#: Namespaced in the release's namespace only (a Role, not a ClusterRole).
LEADER_ELECTION: tuple[Rule, ...] = (
    _rule("coordination.k8s.io", "leases", "get", "create", "update"),
)
