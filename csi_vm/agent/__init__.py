"""The node agent: the DaemonSet's side of csi-vm on Kubernetes.

One agent runs on every node (`csi-vm node-agent run`). The controller
turns custom resources into storage objects and decisions; the agent turns
those decisions into guests on its own node's libvirt:

- `guests`: a CsiVM assigned to this node whose disks are bound and
  published is defined and started; ``running: false`` stops it. The VM's
  status says where it runs (``nodeName``), its phase and why.
- `migrations`: a CsiVMMigration the controller scheduled from this node is run
  here with `launcher.migration`, and left Succeeded (the VM on the target)
  or Failed (the VM still on this node), never running on both.
- `podmigrations`: with launcher Pods, a migration from the VM's Pod here to
  its second launcher Pod on the target node, libvirtd to libvirtd over TLS;
  `podtls` signs each launcher Pod's certificate from the chart's CA.
- `disks`: where the kubelet published each disk of a VM on a node, under
  the VM's holder Pod (named by `csi_vm.crd.names.holder_pod`).
- `state`: the agent's settings, per-VM locks, status writes, domain names.
- `run`: list and watch both resources and hand each change over.
- `rbac`: every API call the agent makes; the chart's ClusterRole for the
  DaemonSet is checked against it.

Only `csi_vm.kube` talks to the API server and only `launcher` to libvirt.
"""
