"""A real two-node Kubernetes for the tests, built from pinned releases.

`scripts/cluster up|down|env|logs` drives it. The modules, bottom up:
``pins`` (every third-party version in one place), ``gobuild`` (Go programs
built once per version into a cache), ``images`` (container images made here,
since no registry can be reached), ``pki`` (certificates and kubeconfigs),
``daemons`` (the host processes), ``node2`` (the second node's namespaces),
``lab`` (up, down, env, logs).
"""
