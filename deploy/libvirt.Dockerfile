# libvirtd and qemu for the node DaemonSet's libvirt container.
#   docker build -f deploy/libvirt.Dockerfile -t REGISTRY/libvirt:9.0.0 deploy
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/log/libvirt /var/lib/libvirt /var/cache/libvirt \
 && groupadd -r -f libvirt-qemu \
 && useradd -r -g libvirt-qemu -M -s /usr/sbin/nologin libvirt-qemu
# libvirtd looks up its compiled-in default user (libvirt-qemu) before it
# reads qemu.conf and refuses to start without it; the user never runs qemu.
# In a container there is no systemd and no per-VM user switching: qemu runs
# as root inside this (privileged) container, confined by the pod instead.
RUN printf 'user = "root"\ngroup = "root"\nnamespaces = [ ]\nsecurity_driver = "none"\n' \
      > /etc/libvirt/qemu.conf
# Migration between nodes goes through the node agents (tunnelled over the
# libvirt connection they open), so libvirtd listens on its unix socket only.
CMD ["sh", "-c", "virtlogd -d && exec libvirtd"]
