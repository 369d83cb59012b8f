"""Spec 5.4 (EXEC_QUEUE_CREATE), EXEC_QUEUE_DESTROY/GET_PROPERTY and EXEC, with raw bytes.

Not reachable: step 6's SR-IOV scheduling-group check (not a VF); the interruptible locks.
Banned-VM answers (ENOENT, ECANCELED) are in tests/fake/test_rebind_worker.py.

Hardware: every job submitted here runs a batch the test bound first (``bind_spin_batch``
for LR queues, ``bind_end_batch`` for dma-fence queues); a job at an unbound address would
page-fault and reset the engine.  ``RawClient.exec`` refuses such a job, and the ``c``
fixture destroys every queue that got a job, so the GPU is idle after each test.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator

import pytest
import rawabi as abi
from rawabi import RawClient, UserMem, u32, u64


@pytest.fixture
def c(xe_backend, xe_file, xe_node) -> Iterator[RawClient]:
    client = RawClient(xe_backend, xe_file, xe_node, check_jobs=True)
    yield client
    client.close()


def create(c: RawClient, vm: int, instances: bytes, **kw) -> tuple[int, bytearray]:
    mem = UserMem(instances)
    a = abi.exec_queue_create(vm, mem.addr, **kw)
    return c.call(abi.EXEC_QUEUE_CREATE, a), a


@pytest.mark.parametrize("kw", [{"flags": 2}, {"flags": 1 << 31}, {"reserved": (1, 0)}, {"reserved": (0, 1)}])
def test_step1_flags_reserved(c, kw):
    vm = c.vm()
    assert create(c, vm, abi.eci(*c.exec_engine()), **kw)[0] == errno.EINVAL


def test_step1_low_latency_hint_ok(c):
    vm = c.vm()
    assert create(c, vm, abi.eci(*c.exec_engine()), flags=1)[0] == 0


@pytest.mark.parametrize("width,num", [(0, 1), (1, 0), (17, 1), (4, 5)])
def test_step2_len(c, width, num):
    vm = c.vm()
    assert create(c, vm, abi.eci(*c.exec_engine()) * 20, width=width, num_placements=num)[0] == errno.EINVAL


def test_step3_instances_fault(c):
    vm = c.vm()
    for ptr in (0, abi.BAD_PTR):
        a = abi.exec_queue_create(vm, ptr)
        assert c.call(abi.EXEC_QUEUE_CREATE, a) == errno.EFAULT


def test_step4_bad_gt(c):
    vm = c.vm()
    cls, inst, _gt = c.exec_engine()
    assert create(c, vm, abi.eci(cls, inst, gt_id=max(c.gt_ids()) + 1))[0] == errno.EINVAL


@pytest.mark.parametrize("kw,inst", [({"width": 2}, 0), ({"num_placements": 2}, 0), ({}, 1)])
def test_step5_vm_bind_shape(c, kw, inst):
    vm = c.vm()
    assert create(c, vm, abi.eci(abi.VM_BIND_CLASS, inst) * 2, **kw)[0] == errno.EINVAL


def test_step5_vm_bind_unknown_vm(c):
    assert create(c, 9, abi.eci(abi.VM_BIND_CLASS))[0] == errno.ENOENT


def test_step6_unknown_engine(c):
    vm = c.vm()
    assert create(c, vm, abi.eci(abi.VIDEO_ENHANCE, 7))[0] == errno.EINVAL
    assert create(c, vm, abi.eci(9, 0))[0] == errno.EINVAL


def test_step6_mixed_classes(c):
    vm = c.vm()
    assert create(c, vm, abi.eci(abi.RENDER) + abi.eci(abi.COPY), num_placements=2)[0] == errno.EINVAL


def test_step6_unknown_vm(c):
    assert create(c, 9, abi.eci(*c.exec_engine()))[0] == errno.ENOENT
    assert create(c, 0, abi.eci(*c.exec_engine()))[0] == errno.ENOENT


def test_step7_extensions(c):
    vm = c.vm()
    assert create(c, vm, abi.eci(*c.exec_engine()), extensions=abi.BAD_PTR)[0] == errno.EFAULT
    ext = UserMem(struct.pack("<QIIIIQQQ", 0, 0, 0, 9, 0, 0, 0, 0))  # unknown property
    assert create(c, vm, abi.eci(*c.exec_engine()), extensions=ext.addr)[0] == errno.EINVAL
    prio = UserMem(struct.pack("<QIIIIQQQ", 0, 0, 0, 0, 0, 1, 0, 0))  # PRIORITY NORMAL
    assert create(c, vm, abi.eci(*c.exec_engine()), extensions=prio.addr)[0] == 0


def test_step7_more_than_16_extensions(c):
    vm = c.vm()
    exts, nxt = [], 0
    for _ in range(17):
        exts.append(UserMem(struct.pack("<QIIIIQQQ", nxt, 0, 0, 0, 0, 1, 0, 0)))
        nxt = exts[-1].addr
    assert create(c, vm, abi.eci(*c.exec_engine()), extensions=nxt)[0] == errno.E2BIG


def test_step9_ids_from_one(c):
    vm = c.vm()
    ids = [u32(create(c, vm, abi.eci(*c.exec_engine()))[1], 20) for _ in range(3)]
    assert ids == [1, 2, 3]
    assert c.destroy_queue(2) == 0
    assert u32(create(c, vm, abi.eci(abi.VM_BIND_CLASS))[1], 20) == 2


def test_destroy(c):
    vm = c.vm()
    q = c.queue(vm, *c.exec_engine())
    assert c.call(abi.EXEC_QUEUE_DESTROY, abi.exec_queue_destroy(q, pad=1)) == errno.EINVAL
    assert c.call(abi.EXEC_QUEUE_DESTROY, abi.exec_queue_destroy(q, reserved=(0, 1))) == errno.EINVAL
    assert c.destroy_queue(q) == 0
    assert c.destroy_queue(q) == errno.ENOENT
    assert c.destroy_queue(0) == errno.ENOENT


def test_get_property_ban(c):
    vm = c.vm()
    q = c.queue(vm, *c.exec_engine())
    a = bytearray(struct.pack("<QIIQQQ", 0, q, 0, 0xFF, 0, 0))
    assert c.call(abi.EXEC_QUEUE_GET_PROPERTY, a) == 0 and u64(a, 16) == 0
    assert c.call(abi.EXEC_QUEUE_GET_PROPERTY, bytearray(struct.pack("<QIIQQQ", 0, q, 1, 0, 0, 0))) == errno.EINVAL
    assert c.call(abi.EXEC_QUEUE_GET_PROPERTY, bytearray(struct.pack("<QIIQQQ", 0, 77, 0, 0, 0, 0))) == errno.ENOENT


# --- EXEC ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{"extensions": 1}, {"pad": (0, 1, 0)}, {"reserved": (1, 0)}])
def test_exec_args(c, kw):
    vm = c.vm(abi.LR_MODE)
    q = c.queue(vm, *c.exec_engine())
    assert c.exec(q, **kw) == errno.EINVAL


def test_exec_unknown_queue(c):
    assert c.exec(5) == errno.ENOENT


def test_exec_on_bind_queue(c):
    vm = c.vm(abi.LR_MODE)
    q = c.queue(vm, abi.VM_BIND_CLASS)
    assert c.exec(q) == errno.EINVAL


def test_exec_batch_count_must_match_width(c):
    vm = c.vm(abi.LR_MODE)
    q = c.queue(vm, *c.exec_engine())
    assert c.exec(q, num_batch_buffer=2) == errno.EINVAL


def test_exec_zero_batches_only_signals(c):
    """No batch: no job; the syncs are still parsed (a bad pointer is EFAULT), then the exec returns 0.

    Not asserted: the user fence's value.  For EXEC a user fence address is a *GPU* address
    that the ring writes when a job completes (xe_sync_entry_parse keeps only ``addr`` for
    exec); with no job the kernel writes nothing, while the fake writes the CPU word.
    """
    vm = c.vm(abi.LR_MODE)
    q = c.queue(vm, *c.exec_engine())
    fence = UserMem(8)
    syncs = UserMem(abi.sync(abi.SYNC_USER_FENCE, addr=fence.addr, timeline_value=7))
    assert c.exec(q, num_batch_buffer=0, num_syncs=1, syncs=abi.BAD_PTR) == errno.EFAULT
    assert c.exec(q, num_batch_buffer=0, num_syncs=1, syncs=syncs.addr) == 0


def test_exec_lr_syncobj_signal_unsupported(c):
    vm = c.vm(abi.LR_MODE)
    q = c.queue(vm, *c.exec_engine())
    syncs = UserMem(abi.sync(abi.SYNC_SYNCOBJ, addr=1))
    assert c.exec(q, num_syncs=1, syncs=syncs.addr) == errno.EOPNOTSUPP


def test_exec_lr_job_in_flight_until_destroy(c):
    vm = c.vm(abi.LR_MODE)
    batch = c.bind_spin_batch(vm)  # an endless, preemptible batch: the job never ends by itself
    q = c.queue(vm, *c.exec_engine())
    assert c.exec(q, address=batch) == 0
    assert c.exec(q, address=batch) == 0
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == errno.EBUSY
    assert c.destroy_queue(q) == 0  # ends the jobs
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == 0


def test_exec_dma_fence_mode_completes(c):
    """A dma-fence job ends by itself and its user fence gets written -- by the GPU, asynchronously.

    The fence is a GPU address (EXEC user fences are written by the ring); the batch page is
    bound at its own CPU address, so the same u64 is the one WAIT_USER_FENCE reads.
    """
    vm = c.vm()
    batch = c.bind_end_batch(vm)  # MI_BATCH_BUFFER_END: a spinning batch would never complete here
    fence = batch - abi.BATCH_OFFSET + abi.EXEC_FENCE_OFFSET
    q = c.queue(vm, *c.exec_engine())
    syncs = UserMem(abi.sync(abi.SYNC_USER_FENCE, addr=fence, timeline_value=3))
    assert c.exec(q, address=batch, num_syncs=1, syncs=syncs.addr) == 0
    assert c.wait_fence(fence, 3) == 0
    assert c.peek(fence) == 3
    assert c.destroy_queue(q) == 0


def test_wait_user_fence(c):
    fence = UserMem(struct.pack("<Q", 5))

    def wait(value: int, op: int = 0, timeout: int = 0, **kw) -> int:
        a = bytearray(
            struct.pack(
                "<QQHHIQQqII16x",
                0,
                kw.get("addr", fence.addr),
                op,
                0,
                0,
                value,
                0xFFFFFFFFFFFFFFFF,
                timeout,
                kw.get("q", 0),
                0,
            )
        )
        return c.call(abi.WAIT_USER_FENCE, a)

    assert wait(5) == 0
    assert wait(6, timeout=1_000_000) == errno.ETIME
    assert wait(5, op=6) == errno.EINVAL
    assert wait(5, addr=fence.addr + 4) == errno.EINVAL
    assert wait(5, q=99) == errno.ENOENT
    assert wait(5, addr=abi.BAD_PTR) == errno.EFAULT
