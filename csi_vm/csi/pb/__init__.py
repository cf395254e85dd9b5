"""Generated protobuf and gRPC bindings (see scripts/gen-proto).

csi: CSI v1.12. pluginregistration: the kubelet's plugin-registration API,
which a node plugin serves so that the kubelet finds its CSI socket.
"""
