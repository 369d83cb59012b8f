"""Spec 6.2 (DRM_IOCTL_XE_VM_RESTART) rows 1-10, and 6.1's reactivation by exec, through the seam.

Rows 5 and 8 (interrupted lock) are not reachable without a signal; row 6 (closed or
banned) needs a banned VM: tests/fake/test_rebind_worker.py.  The paused case (row 10
after a VM_ERR) is the recovery story: tests/fake/test_recovery_e2e.py.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

import pytest
import rawabi as abi
from rawabi import RawClient


@pytest.fixture
def c(xe_backend, xe_file, xe_node) -> Iterator[RawClient]:
    client = RawClient(xe_backend, xe_file, xe_node, check_jobs=True)
    yield client
    client.close()  # destroys the queues that got a job: an LR job never ends by itself


@pytest.mark.parametrize("kw", [{"pad": 1}, {"reserved": 1}, {"reserved": 1 << 63}])
def test_row1_pad_reserved(c, kw):
    vm = c.vm(abi.LR_MODE | abi.RESTARTABLE)
    assert c.restart(vm, **kw) == errno.EINVAL


def test_row1_before_lookup(c):
    assert c.restart(99, pad=1) == errno.EINVAL


@pytest.mark.parametrize("vm_id", [0, 1, 99])
def test_row2_unknown_vm(c, vm_id):
    assert c.restart(vm_id) == errno.ENOENT


def test_row2_destroyed_vm(c):
    vm = c.vm(abi.LR_MODE | abi.RESTARTABLE)
    assert c.call(abi.VM_DESTROY, abi.vm_destroy(vm)) == 0
    assert c.restart(vm) == errno.ENOENT


def test_row3_not_preempt_fence_mode(c):
    assert c.restart(c.vm(0)) == errno.EINVAL
    assert c.restart(c.vm(abi.SCRATCH_PAGE)) == errno.EINVAL


def test_row3_fault_mode(c):
    a = abi.vm_create(abi.LR_MODE | abi.FAULT_MODE)
    if c.call(abi.VM_CREATE, a) != 0:
        pytest.skip("no USM: no fault-mode VM")
    assert c.restart(abi.u32(a, 12)) == errno.EINVAL


def test_row4_not_restartable(c):
    assert c.restart(c.vm(abi.LR_MODE)) == errno.EINVAL


def test_row7_timestamp_is_not_validated(c):
    vm = c.vm(abi.LR_MODE | abi.RESTARTABLE)
    assert c.restart(vm, timestamp_ns=0xFFFFFFFFFFFFFFFF) == errno.EALREADY


def test_row9_running_vm_ealready(c):
    vm = c.vm(abi.LR_MODE | abi.RESTARTABLE)
    assert c.restart(vm) == errno.EALREADY
    batch = c.bind_spin_batch(vm)  # a real, endless job: at an unbound address it would page-fault
    q = c.queue(vm, *c.exec_engine())
    assert c.exec(q, address=batch) == 0
    assert c.restart(vm) == errno.EALREADY
    assert c.destroy_queue(q) == 0
