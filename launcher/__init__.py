"""Node side: libvirt VMs on CSI volumes, device discovery."""
