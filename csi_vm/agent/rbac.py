"""Every API call the node agent makes, as RBAC rules.

The chart's ClusterRole for the DaemonSet must grant exactly these (a test
compares them, and a fake-API test checks the agent calls nothing else).
Nothing here creates or deletes storage: that is the controller's.
"""

from __future__ import annotations

from csi_vm.crd import rbac

Rule = rbac.Rule

AGENT: tuple[Rule, ...] = (
    # run: list and watch; guests, migrations: read one fresh before acting
    Rule(group="csi-vm.io", resource="csivms", verbs=frozenset({"get", "list", "watch"})),
    Rule(group="csi-vm.io", resource="csivmmigrations", verbs=frozenset({"get", "list", "watch"})),
    Rule(group="csi-vm.io", resource="csivmsnapshots", verbs=frozenset({"get", "list", "watch"})),
    # state: where a VM runs and what a migration did
    Rule(group="csi-vm.io", resource="csivms/status", verbs=frozenset({"patch"})),
    Rule(group="csi-vm.io", resource="csivmmigrations/status", verbs=frozenset({"patch"})),
    # online_snapshot: the freeze's outcome, and whether the snapshots were cut
    Rule(group="csi-vm.io", resource="csivmsnapshots/status", verbs=frozenset({"patch"})),
    Rule(group="snapshot.storage.k8s.io", resource="volumesnapshots", verbs=frozenset({"get"})),
    # disks: the holder Pod (its uid names the kubelet's directory) and each claim's volume;
    # launched: whether the VM's launcher Pod runs, and each claim's volumeMode;
    # launchers: the launcher Pods whose run directories stay;
    # run, podevents: a launcher Pod of this node that changed starts its guest
    Rule(group="", resource="pods", verbs=frozenset({"get", "list", "watch"})),
    Rule(group="", resource="persistentvolumeclaims", verbs=frozenset({"get"})),
    # state: Events about what the agent did to a VM or a migration
    Rule(group="", resource="events", verbs=frozenset({"create"})),
)
