"""Spec 5.3 (VM_BIND), every step in order, with raw bytes through the seam.

Not reachable: step 8 (down_write_killable is never interrupted here), DECOMPRESS /
AUTORESET / PXP (bit values unknown: unknown flags), hardware-reserved PAT entries
(none in the Xe_LP table).

PAT indices differ per platform (Xe_LP: 0 is WB and coherent; MTL and Xe2: 0 is not), so
binds use the device's coherent index (``c.coherent_pat()``, the first of the plugin's
``USERPTR_PAT_INDICES`` the driver takes for a userptr) and the non-coherent cases use
``c.noncoherent_pat()`` (an index a WB BO refuses and a WC BO takes).  BOs here are in
system memory, where no 64K page rule applies.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

import pytest
import rawabi as abi
from rawabi import RawClient, UserMem

SZ = 64 * 1024
ADDR = 0x100000


@pytest.fixture
def c(xe_backend, xe_file, xe_node) -> Iterator[RawClient]:
    client = RawClient(xe_backend, xe_file, xe_node, check_jobs=True)
    yield client
    client.close()


@pytest.fixture
def vm(c) -> int:
    return c.vm()


@pytest.fixture
def bo(c) -> int:
    return c.bo(SZ)


def noncoherent(c: RawClient) -> int:
    pat = c.noncoherent_pat()
    if pat is None:
        pytest.skip(f"no non-coherent PAT index among {abi.NONCOHERENT_PAT_CANDIDATES}")
    return pat


def bind(c: RawClient, vm: int, **kw) -> int:
    kw.setdefault("pat_index", c.coherent_pat())
    top = {
        k: kw.pop(k)
        for k in list(kw)
        if k in ("exec_queue_id", "num_syncs", "syncs", "extensions", "pad", "pad2", "reserved", "num_binds")
    }
    return c.call(abi.VM_BIND, abi.vm_bind(vm, abi.vm_bind_op(**kw), **top))


def test_step1_unknown_vm_is_einval(c, bo):
    assert bind(c, 77, obj=bo, range=SZ, addr=ADDR) == errno.EINVAL
    assert bind(c, 0, obj=bo, range=SZ, addr=ADDR) == errno.EINVAL


@pytest.mark.parametrize("kw", [{"pad": 1}, {"pad2": 1}, {"reserved": (1, 0)}, {"reserved": (0, 1)}, {"extensions": 8}])
def test_steps2_3_pad_reserved_extensions(c, vm, bo, kw):
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR, **kw) == errno.EINVAL


def test_step4_too_many_syncs(c, vm, bo):
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR, num_syncs=1025) == errno.EINVAL


def test_step5_vector_alloc_enobufs(c, vm):
    assert c.call(abi.VM_BIND, abi.vm_bind(vm, num_binds=0x7FFFFFFF, vector=abi.BAD_PTR)) == errno.ENOBUFS


def test_step5_vector_fault_efault(c, vm):
    assert c.call(abi.VM_BIND, abi.vm_bind(vm, num_binds=2, vector=abi.BAD_PTR)) == errno.EFAULT
    assert c.call(abi.VM_BIND, abi.vm_bind(vm, num_binds=2, vector=0)) == errno.EFAULT


def test_step5_vector_of_binds(c, vm):
    bos = [c.bo(SZ) for _ in range(3)]
    pat = c.coherent_pat()
    vec = UserMem(
        b"".join(abi.vm_bind_op(obj=h, range=SZ, addr=ADDR + i * SZ, pat_index=pat) for i, h in enumerate(bos))
    )
    assert c.call(abi.VM_BIND, abi.vm_bind(vm, num_binds=3, vector=vec.addr)) == 0
    # the whole range is mapped: unmapping it in one op works, a second UNMAP_ALL finds nothing to do
    assert bind(c, vm, op=abi.OP_UNMAP, range=3 * SZ, addr=ADDR) == 0


def test_step6_mirror_without_fault_mode(c, vm):
    assert bind(c, vm, flags=abi.F_CPU_ADDR_MIRROR, range=SZ, addr=ADDR) == errno.EINVAL


def test_step6_pat_index_out_of_range(c, vm, bo):
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR, pat_index=0xFFFF) == errno.EINVAL


COMBINED = [
    ("op > PREFETCH", {"op": 5, "range": SZ, "addr": ADDR}),
    ("unknown flag", {"op": abi.OP_MAP, "flags": 1 << 12, "obj": "bo", "range": SZ, "addr": ADDR}),
    ("obj with NULL", {"op": abi.OP_MAP, "flags": abi.F_NULL, "obj": "bo", "range": SZ, "addr": ADDR}),
    (
        "obj_offset with NULL",
        {"op": abi.OP_MAP, "flags": abi.F_NULL, "obj_offset": abi.PAGE, "range": SZ, "addr": ADDR},
    ),
    ("NULL on UNMAP", {"op": abi.OP_UNMAP, "flags": abi.F_NULL, "range": SZ, "addr": ADDR}),
    ("MAP without obj", {"op": abi.OP_MAP, "range": SZ, "addr": ADDR}),
    ("UNMAP_ALL without obj", {"op": abi.OP_UNMAP_ALL}),
    ("UNMAP_ALL with addr", {"op": abi.OP_UNMAP_ALL, "obj": "bo", "addr": ADDR}),
    ("UNMAP_ALL with range", {"op": abi.OP_UNMAP_ALL, "obj": "bo", "range": SZ}),
    ("USERPTR with obj", {"op": abi.OP_MAP_USERPTR, "obj": "bo", "range": SZ, "addr": ADDR}),
    (
        "USERPTR non-coherent PAT",
        {"op": abi.OP_MAP_USERPTR, "obj_offset": 0x10000, "range": SZ, "addr": ADDR, "pat_index": "noncoherent"},
    ),
    ("obj on PREFETCH", {"op": abi.OP_PREFETCH, "obj": "bo", "range": SZ, "addr": ADDR}),
    ("prefetch region on MAP", {"op": abi.OP_MAP, "obj": "bo", "range": SZ, "addr": ADDR, "prefetch": 1}),
    ("invalid prefetch region", {"op": abi.OP_PREFETCH, "range": SZ, "addr": ADDR, "prefetch": 9}),
    ("obj on UNMAP", {"op": abi.OP_UNMAP, "obj": "bo", "range": SZ, "addr": ADDR}),
]


@pytest.mark.parametrize("why,kw", COMBINED, ids=[w for w, _ in COMBINED])
def test_step6_combined_check(c, vm, bo, why, kw):
    kw = dict(kw)
    if kw.get("obj") == "bo":
        kw["obj"] = bo
    if kw.get("pat_index") == "noncoherent":
        kw["pat_index"] = noncoherent(c)
    assert bind(c, vm, **kw) == errno.EINVAL


@pytest.mark.parametrize(
    "kw",
    [
        {"obj_offset": 0x800, "range": SZ, "addr": ADDR},
        {"range": SZ, "addr": ADDR + 0x10},
        {"range": SZ - 0x200, "addr": ADDR},
        {"range": 0, "addr": ADDR},
    ],
)
def test_step6_alignment_and_zero_range(c, vm, bo, kw):
    assert bind(c, vm, obj=bo, **kw) == errno.EINVAL


def test_step6_zero_range_on_unmap(c, vm):
    assert bind(c, vm, op=abi.OP_UNMAP, range=0, addr=ADDR) == errno.EINVAL


def test_step7_unknown_queue_enoent(c, vm, bo):
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR, exec_queue_id=42) == errno.ENOENT


def test_step7_not_a_bind_queue_einval(c, vm, bo):
    q = c.queue(vm, *c.exec_engine())
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR, exec_queue_id=q) == errno.EINVAL


def test_step7_bind_queue_of_another_vm_einval(c, vm, bo):
    other = c.vm()
    q = c.queue(other, abi.VM_BIND_CLASS)
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR, exec_queue_id=q) == errno.EINVAL


def test_step7_bind_queue_ok(c, vm, bo):
    q = c.queue(vm, abi.VM_BIND_CLASS)
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR, exec_queue_id=q) == 0


def _vm_size(c: RawClient) -> int:
    return 1 << c.config()[3]


def test_step10_range_beyond_vm(c, vm):
    size = _vm_size(c)
    assert bind(c, vm, op=abi.OP_MAP, flags=abi.F_NULL, range=size + abi.PAGE, addr=0) == errno.EINVAL
    assert bind(c, vm, op=abi.OP_MAP, flags=abi.F_NULL, range=2 * abi.PAGE, addr=size - abi.PAGE) == errno.EINVAL
    assert bind(c, vm, op=abi.OP_MAP, flags=abi.F_NULL, range=abi.PAGE, addr=size - abi.PAGE) == 0


def test_step11_unknown_bo_enoent(c, vm):
    assert bind(c, vm, obj=999, range=SZ, addr=ADDR) == errno.ENOENT


def test_step11_range_or_offset_beyond_bo(c, vm, bo):
    assert bind(c, vm, obj=bo, range=2 * SZ, addr=ADDR) == errno.EINVAL
    assert bind(c, vm, obj=bo, obj_offset=SZ, range=abi.PAGE, addr=ADDR) == errno.EINVAL
    assert bind(c, vm, obj=bo, obj_offset=SZ - abi.PAGE, range=abi.PAGE, addr=ADDR) == 0


def test_step11_wb_bo_needs_coherent_pat(c, vm, bo):
    pat = noncoherent(c)
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR, pat_index=pat) == errno.EINVAL
    wc = c.bo(SZ, cpu_caching=abi.WC)
    assert bind(c, vm, obj=wc, range=SZ, addr=ADDR, pat_index=pat) == 0
    # the index the userptr rule took is one the BO rule takes for a WB BO too
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR + SZ, pat_index=c.coherent_pat()) == 0


def test_step11_vm_private_bo_other_vm(c, vm):
    other = c.vm()
    private = c.bo(SZ, vm_id=other)
    assert bind(c, vm, obj=private, range=SZ, addr=ADDR) == errno.EINVAL
    assert bind(c, other, obj=private, range=SZ, addr=ADDR) == 0


def test_step12_sync_checks(c, vm, bo):
    def with_sync(raw: bytes, n: int = 1) -> int:
        mem = UserMem(raw)
        return bind(c, vm, obj=bo, range=SZ, addr=ADDR, num_syncs=n, syncs=mem.addr)

    fence = UserMem(8)
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR, num_syncs=1, syncs=abi.BAD_PTR) == errno.EFAULT
    assert with_sync(abi.sync(7)) == errno.EINVAL
    assert with_sync(abi.sync(abi.SYNC_USER_FENCE, flags=3, addr=fence.addr)) == errno.EINVAL
    assert with_sync(abi.sync(abi.SYNC_USER_FENCE, addr=fence.addr, reserved=(1, 0))) == errno.EINVAL
    assert with_sync(abi.sync(abi.SYNC_USER_FENCE, addr=fence.addr + 4)) == errno.EINVAL
    assert with_sync(abi.sync(abi.SYNC_USER_FENCE, flags=0, addr=fence.addr)) == errno.EOPNOTSUPP
    assert with_sync(abi.sync(abi.SYNC_SYNCOBJ, addr=0xFFFF)) == errno.ENOENT
    two = abi.sync(abi.SYNC_USER_FENCE, addr=fence.addr, timeline_value=1) * 2
    assert with_sync(two, 2) == errno.EINVAL  # more than one user fence


def test_step12_user_fence_signalled(c, vm, bo):
    # A bind's user fence is a CPU address, written by a kernel worker when the bind is done:
    # asynchronously on hardware, so wait for it (with a timeout) rather than read it at once.
    fence = UserMem(8)
    syncs = UserMem(abi.sync(abi.SYNC_USER_FENCE, addr=fence.addr, timeline_value=0xC0FFEE))
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR, num_syncs=1, syncs=syncs.addr) == 0
    assert c.wait_fence(fence.addr, 0xC0FFEE) == 0
    assert abi.u64(fence.buf, 0) == 0xC0FFEE


def test_step13_no_binds_ok(c, vm):
    assert c.call(abi.VM_BIND, abi.vm_bind(vm, num_binds=0)) == 0


def test_step13_no_binds_disallows_user_fence(c, vm):
    fence = UserMem(8)
    syncs = UserMem(abi.sync(abi.SYNC_USER_FENCE, addr=fence.addr))
    assert c.call(abi.VM_BIND, abi.vm_bind(vm, num_binds=0, num_syncs=1, syncs=syncs.addr)) == errno.EOPNOTSUPP


def test_map_unmap_unmap_all(c, vm, bo):
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR) == 0
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR + SZ) == 0
    assert bind(c, vm, op=abi.OP_UNMAP, range=abi.PAGE, addr=ADDR + abi.PAGE) == 0  # splits a mapping
    assert bind(c, vm, op=abi.OP_UNMAP_ALL, obj=bo) == 0
    assert bind(c, vm, op=abi.OP_UNMAP, range=SZ, addr=0x40000000) == 0  # nothing there: fine


def test_null_and_prefetch(c, vm):
    assert bind(c, vm, op=abi.OP_MAP, flags=abi.F_NULL, range=SZ, addr=ADDR) == 0
    assert bind(c, vm, op=abi.OP_PREFETCH, range=SZ, addr=ADDR, prefetch=0) == 0


def test_userptr(c, vm):
    mem = abi.GpuPage(SZ)  # page aligned, and unmapped only after the binding is gone
    try:
        assert bind(c, vm, op=abi.OP_MAP_USERPTR, obj_offset=mem.addr, range=SZ, addr=ADDR) == 0
        assert bind(c, vm, op=abi.OP_MAP_USERPTR, obj_offset=abi.BAD_PTR, range=SZ, addr=ADDR + SZ) == errno.EFAULT
        assert bind(c, vm, op=abi.OP_UNMAP, range=SZ, addr=ADDR) == 0
    finally:
        mem.close()


def test_bind_after_gem_close_keeps_bo(c, vm, bo):
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR) == 0
    assert c.call(abi.DRM_IOCTL_GEM_CLOSE, abi.gem_close(bo)) == 0
    assert bind(c, vm, obj=bo, range=SZ, addr=ADDR + SZ) == errno.ENOENT
