"""Copy engine: sparse, allocation-aware copies of raw and qcow2 disk images
between files and block devices.

Entry points are in ``engine`` (``copy`` and ``describe``), with what they take
and give in ``model``. The modules, top down:

    engine     raw to raw goes to rawcopy, anything with qcow2 to convert
    rawcopy    extents, target zeroing policy, the transfer, verify, commit
    convert    qcow2 import/export through qemu-img, same staging and checks
    methods    reflink / copy_file_range / read-write per piece, stepping down
    pool       threads over pieces: progress, prefetch window, cancel
    digest     checksums of logical content (holes read as zeros)
    staging    temporary file renamed into place, or the exclusive device
    endpoints  what source and target are; refusals before anything is written
    formats    raw or qcow2 by magic; other formats refused by name
    plan       pure extent arithmetic and zero detection
    kernel     the only module making ioctls and special system calls
    qemu       the only module running qemu-img
    process    the only module starting child processes
    failures   OS errors mapped into csi_vm.errors

It imports only the standard library and ``csi_vm.errors``.
"""
