"""What the controller and the node agent share: csi-vm's resources and the rules about them.

The controller (`csi_vm.controller`) and the node agent (`csi_vm.agent`)
read and write the same objects and must agree on how things are named and
decided; neither imports the other (a contract in ``.importlinter``), so
everything both sides use lives here:

- `kinds`: the custom resources (group csi-vm.io) and the built-in kinds used.
- `models`: typed views of the custom resources.
- `names`: names one side makes and the other looks up (a VM's holder Pod,
  a storage migration's claims, the migration strategies).
- `rules`: decisions both sides take the same way (which node a VM belongs
  to, a claim's volumeMode).
- `status`, `status_write`, `events`: conditions, status writes that never
  lose the other side's update, and Kubernetes Events.
- `rbac`: the shape of an RBAC rule, in which each side lists its API calls.

Only `csi_vm.kube` talks to the API server; this package builds and reads
plain JSON objects and frozen models.
"""
