#!/usr/bin/env bash
# Two nodes on this machine, a VM that writes an increasing counter to its
# disk, and everything csi-vm does to a running VM: online snapshot, online
# expansion, live migration with a storage copy to the other node (node-local
# storage), and back. Run as root after scripts/setup; takes about a minute.
# Everything it starts is stopped and removed at the end, also on failure.
#
#   examples/two-node-demo.sh [WORKDIR]      (default: a new directory in /var/tmp)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
csivm="$repo/.venv/bin/csi-vm"
node_b=csi-vm-demo-b
work=${1:-$(mktemp -d /var/tmp/csi-vm-demo.XXXXXX)}
mkdir -p "$work"
pids=()

cleanup() {
  set +e
  echo "== cleaning up"
  "$csivm" vm stop demo --grace 0 >/dev/null 2>&1
  "$csivm" vm delete demo >/dev/null 2>&1
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  "$repo/scripts/libvirt-node" stop "$node_b" >/dev/null
}
trap cleanup EXIT

step() { echo; echo "== $*"; }

step "libvirt: the system daemon is node-a, a second daemon in its own mount namespace is node-b"
"$repo/scripts/libvirtd-start"
uri_b=$("$repo/scripts/libvirt-node" start "$node_b")
echo "node-b: $uri_b"

step "one local CSI driver per node, each with its own storage (node-local, like a local SSD)"
for n in a b; do
  "$csivm" localdriver --endpoint "unix://$work/driver-$n.sock" --state-dir "$work/state-$n" \
    --node-id "node-$n" --log-level WARNING >"$work/driver-$n.log" 2>&1 &
  pids+=($!)
done
for n in a b; do
  for _ in $(seq 100); do [ -S "$work/driver-$n.sock" ] && break; sleep 0.1; done
done

cat >"$work/config.yaml" <<YAML
node: node-a
nodes:
  node-a: {libvirt: "qemu:///system", driver: local-a}
  node-b: {libvirt: "$uri_b", driver: local-b}
drivers:
  local-a: {endpoint: "unix://$work/driver-a.sock", nodes: {node-a: "unix://$work/driver-a.sock"}}
  local-b: {endpoint: "unix://$work/driver-b.sock", nodes: {node-b: "unix://$work/driver-b.sock"}}
YAML
cat >"$work/demo.yaml" <<YAML
name: demo
memory_mib: 128
disks:
  - {name: root, size: 64MiB, driver: local-a, mode: block}
YAML
export CSI_VM_CONFIG="$work/config.yaml" CSI_VM_DB="$work/csi-vm.db" CSI_VM_STATE_DIR="$work/state"

step "create the VM and start it on node-a with the counter guest"
"$csivm" vm create -f "$work/demo.yaml"
"$csivm" vm start demo --counter-guest
sleep 4
"$csivm" vm console demo --lines 3

step "online snapshot while the counter runs (no guest agent: crash-consistent)"
"$csivm" snapshot create demo --name demo-live

step "grow the disk under the running guest (CSI expansion + blockResize)"
"$csivm" disk expand demo root 128MiB

step "live-migrate to node-b: new volume on node-b's driver, storage copy, old volume retired"
"$csivm" migrate demo --to node-b
"$csivm" vm status demo
sleep 2
"$csivm" vm console demo --lines 3

step "and back to node-a"
"$csivm" migrate demo --to node-a -o yaml
"$csivm" vm show demo

step "stop it; restore the live snapshot as a new VM"
"$csivm" vm stop demo --grace 0
"$csivm" snapshot restore demo-live --as demo-restored
"$csivm" vm delete demo-restored
"$csivm" snapshot delete demo-live
echo; echo "== done: see $work for logs"
