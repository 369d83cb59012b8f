"""Spec 5.1 (VM_CREATE) and 5.2 (VM_DESTROY), with raw bytes through the seam.

Device-dependent rows: row 2 (Wa_22014953428 ORs SCRATCH_PAGE into the copy-back)
is asserted from the device id; rows 3/6 depend on USM / needs_scratch and are
covered for both answers in tests/fake/test_presets.py.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

import pytest
import rawabi as abi
from rawabi import RawClient, u32

#: DG2 G10/G12 device ids (Wa_22014953428)
DG2_WA_IDS = {
    0x5690,
    0x5691,
    0x5692,
    0x56A0,
    0x56A1,
    0x56A2,
    0x56BE,
    0x56BF,
    0x5696,
    0x5697,
    0x56A3,
    0x56A4,
    0x56B2,
    0x56B3,
}


@pytest.fixture
def c(xe_backend, xe_file, xe_node) -> Iterator[RawClient]:
    client = RawClient(xe_backend, xe_file, xe_node, check_jobs=True)
    yield client
    client.close()


def _wa_scratch(c: RawClient) -> int:
    return abi.SCRATCH_PAGE if c.config()[0] & 0xFFFF in DG2_WA_IDS else 0


def _has_usm(c: RawClient) -> bool:
    a = abi.vm_create(abi.LR_MODE | abi.FAULT_MODE)
    err = c.call(abi.VM_CREATE, a)
    if err == 0:
        assert c.call(abi.VM_DESTROY, abi.vm_destroy(u32(a, 12))) == 0
    return err == 0


# --- 5.1 VM_CREATE ----------------------------------------------------------------------
def test_row1_extensions_einval_before_workaround(c):
    a = abi.vm_create(abi.LR_MODE, extensions=0x1000)
    assert c.call(abi.VM_CREATE, a) == errno.EINVAL
    assert u32(a, 8) == abi.LR_MODE  # returned before the workaround touched the flags
    assert u32(a, 12) == 0


@pytest.mark.parametrize("flags", [0, abi.LR_MODE, abi.LR_MODE | abi.RESTARTABLE])
def test_row2_workaround_in_copy_back(c, flags):
    a = abi.vm_create(flags)
    assert c.call(abi.VM_CREATE, a) == 0
    assert u32(a, 8) == flags | _wa_scratch(c)


def test_row2_copy_back_also_on_failure(c):
    a = abi.vm_create(abi.LR_MODE, reserved=(1, 0))
    assert c.call(abi.VM_CREATE, a) == errno.EINVAL
    assert u32(a, 8) == abi.LR_MODE | _wa_scratch(c)


@pytest.mark.parametrize("reserved", [(1, 0), (0, 1), (1 << 63, 0)])
def test_row4_reserved_einval(c, reserved):
    assert c.call(abi.VM_CREATE, abi.vm_create(abi.LR_MODE, reserved=reserved)) == errno.EINVAL


@pytest.mark.parametrize("flags", [1 << 5, 1 << 31, 0xFFFFFFFF & ~abi.FAULT_MODE])
def test_row5_unknown_flags_einval(c, flags):
    assert c.call(abi.VM_CREATE, abi.vm_create(flags)) == errno.EINVAL


def test_row7_fault_without_lr_einval(c):
    if not _has_usm(c):
        pytest.skip("no USM: FAULT_MODE is refused at row 3 (tests/fake/test_presets.py)")
    assert c.call(abi.VM_CREATE, abi.vm_create(abi.FAULT_MODE)) == errno.EINVAL


@pytest.mark.parametrize("flags", [abi.NO_VM_OVERCOMMIT, abi.NO_VM_OVERCOMMIT | abi.LR_MODE])
def test_row8_no_overcommit_without_fault_einval(c, flags):
    assert c.call(abi.VM_CREATE, abi.vm_create(flags)) == errno.EINVAL


def test_row8_no_overcommit_with_fault_ok(c):
    if not _has_usm(c):
        pytest.skip("no USM")
    assert c.call(abi.VM_CREATE, abi.vm_create(abi.NO_VM_OVERCOMMIT | abi.FAULT_MODE | abi.LR_MODE)) == 0


@pytest.mark.parametrize(
    "flags", [abi.RESTARTABLE, abi.RESTARTABLE | abi.SCRATCH_PAGE, abi.RESTARTABLE | abi.LR_MODE | abi.FAULT_MODE]
)
def test_row9_restartable_needs_lr_without_fault(c, flags):
    assert c.call(abi.VM_CREATE, abi.vm_create(flags)) == errno.EINVAL


def test_row9_restartable_lr_ok(c):
    assert c.vm(abi.LR_MODE | abi.RESTARTABLE) == 1


def test_fault_mode_vm_with_usm(c):
    if not _has_usm(c):
        pytest.skip("no USM")
    assert c.call(abi.VM_CREATE, abi.vm_create(abi.LR_MODE | abi.FAULT_MODE)) == 0


def test_ids_from_one_lowest_free_reused(c):
    assert [c.vm(), c.vm(abi.LR_MODE), c.vm()] == [1, 2, 3]
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(2)) == 0
    assert c.vm() == 2  # xa_alloc: the lowest free id
    assert c.vm() == 4


# --- 5.2 VM_DESTROY ----------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{"pad": 1}, {"reserved": (1, 0)}, {"reserved": (0, 1)}])
def test_destroy_row1_pad_reserved_einval(c, kw):
    vm = c.vm()
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm, **kw)) == errno.EINVAL
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == 0  # still there


@pytest.mark.parametrize("vm_id", [0, 1, 0xFFFFFFFF])
def test_destroy_row2_unknown_enoent(c, vm_id):
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm_id)) == errno.ENOENT


def test_destroy_row2_twice_enoent(c):
    vm = c.vm()
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == 0
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == errno.ENOENT


def test_destroy_row3_preempt_queue_ebusy(c):
    vm = c.vm(abi.LR_MODE)
    q = c.queue(vm, *c.exec_engine())
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == errno.EBUSY
    assert c.destroy_queue(q) == 0
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == 0


def test_destroy_row3_bind_queue_does_not_count(c):
    vm = c.vm(abi.LR_MODE)
    c.queue(vm, abi.VM_BIND_CLASS)
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == 0


def test_destroy_row4_dma_fence_vm_with_queue_ok(c):
    """Outside preempt-fence mode queues are not counted: destroy succeeds, exec is then ECANCELED."""
    vm = c.vm()
    q = c.queue(vm, *c.exec_engine())
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == 0
    assert c.exec(q) == errno.ECANCELED


def test_vm_is_per_file(xe_backend, xe_node):
    import os

    a, b = (xe_backend.open(xe_node, os.O_RDWR | os.O_CLOEXEC) for _ in range(2))
    try:
        vm = RawClient(xe_backend, a).vm()
        assert RawClient(xe_backend, b).call(abi.VM_DESTROY, abi.vm_destroy(vm)) == errno.ENOENT
    finally:
        xe_backend.close(a)
        xe_backend.close(b)
