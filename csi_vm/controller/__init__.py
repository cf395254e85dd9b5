"""The Kubernetes controller: csi-vm's custom resources reconciled into storage objects.

Modules, from the outside in:

- `run`: the `csi-vm controller run` loop: leader election, then list and
  watch each custom resource and hand every change to its reconciler.
- `leader`: leader election through a coordination.k8s.io Lease.
- `rbac`: every (group, resource, verbs) the controller calls; the chart's
  ClusterRole is checked against it.
- `reconcile_*`: one reconciler per custom resource; `diskops` sums up
  per-disk work, `vmobjects` makes the VM a clone or restore produces,
  `expand` grows disks (CSI expansion, or a copy to a larger claim),
  `movedisks` gives a storage migration its new claims on the target.
- `storage`: the Kubernetes storage backend: PVCs with a dataSource,
  VolumeSnapshots, PVC resize, and the host-copy Job of the fallback rung;
  `placement` puts that Job on the node that can read its source.
- `context`: what each reconciler gets, and the one place status is written.
- `strategy`: the strategy for an operation on a StorageClass, read from its
  StorageCapabilityReport (whose plan comes from `capabilities.ladder`);
  `verify` tries a class's operations through the sidecars when asked.
- `metrics`: Prometheus metrics.

What the node agent shares with the controller (resource kinds and models,
status conditions and writes, Events, names and placement rules) is in
`csi_vm.crd`; the two never import each other. Only `csi_vm.kube` talks to
the API server; this package builds and reads plain JSON objects and frozen
models.
"""
