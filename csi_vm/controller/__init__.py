"""The Kubernetes controller: csi-vm's custom resources reconciled into storage objects.

Modules, from the outside in:

- `run`: the `csi-vm controller run` loop: leader election, then list and
  watch each custom resource and hand every change to its reconciler.
- `leader`: leader election through a coordination.k8s.io Lease.
- `kinds`: the custom resources (group csi-vm.io) and the built-in kinds used.
- `rbac`: every (group, resource, verbs) the controller calls; the chart's
  ClusterRole is checked against it.
- `reconcile_*`: one reconciler per custom resource; `diskops` sums up
  per-disk work, `vmobjects` makes the VM a clone or restore produces,
  `expand` grows disks (CSI expansion, or a copy to a larger claim),
  `movedisks` gives a storage migration its new claims on the target.
- `storage`: the Kubernetes storage backend: PVCs with a dataSource,
  VolumeSnapshots, PVC resize, and the host-copy Job of the fallback rung;
  `placement` puts that Job on the node that can read its source.
- `models`: typed views of the custom resources.
- `context`: what each reconciler gets, and the one place status is written.
- `strategy`: the strategy for an operation on a StorageClass, read from its
  StorageCapabilityReport (whose plan comes from `capabilities.ladder`);
  `verify` tries a class's operations through the sidecars when asked.
- `status`, `events`: conditions and Kubernetes Events naming the strategy
  and the fallback reason; `status_write`: status writes guarded by
  resourceVersion, so the controller and the node agent never lose each
  other's updates.
- `metrics`: Prometheus metrics.

Only `csi_vm.kube` talks to the API server; this package builds and reads
plain JSON objects and frozen models.
"""
