"""Node side: libvirt VMs on CSI volumes, device discovery.

node          start/status/stop a VM whose disks are CSI volumes
vmrecord      what a start did, kept until a stop undoes it
domain        domain XML from a frozen VM description
libvirt_conn  the one door to libvirt (errors mapped into csi_vm.errors)
blockjobs     running disks: resize, push backup, copy + pivot, guest agent freeze
migration     live migration between nodes, with or without a storage copy
devices       block devices through pyudev: resolve, wait until ready
guest         the counter guest, built from Debian packages and cached
agentguest    its variant with ext4 and qemu-guest-agent
counter       the guest's on-disk counter record: writer loop and reader
fscounter     the agent guest's counter file and filesystem, read from the host
initramfs     reproducible newc archives
hostcmd       the one door to host programs
"""
