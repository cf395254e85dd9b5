# The csi-vm image: the controller, the node agent's tools, host-copy Jobs
# and the `helm test` probe all run it.
#   docker build -f deploy/csi-vm.Dockerfile -t REGISTRY/csi-vm:0.1.0 .
FROM python:3.11-slim-bookworm
# qemu-img: qcow2 images in host copies; util-linux: block device sizes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends qemu-utils util-linux \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /src/
COPY csi_vm /src/csi_vm
COPY capabilities /src/capabilities
COPY launcher /src/launcher
RUN pip install --no-cache-dir /src && rm -rf /src
# The controller runs as this user (the chart sets runAsUser 65532 too);
# copy Jobs and the probe override it where block devices or root-owned
# sockets need root.
USER 65532
ENTRYPOINT ["csi-vm"]
