"""`python -m csi_vm.localdriver --endpoint ... --state-dir ... --node-id ...`"""

from csi_vm.localdriver import server

raise SystemExit(server.main())
