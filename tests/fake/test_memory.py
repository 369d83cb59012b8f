"""The memory model: when BOs take VRAM, and the eviction rule (xe_bo module doc)."""

from __future__ import annotations

import errno
import os

from conformance import rawabi as abi
from conformance.rawabi import RawClient

from xeclient.backends.fake import FakeBackend

MiB = 1 << 20
VRAM = 2  # placement bit of the VRAM region


def client(backend: FakeBackend) -> RawClient:
    return RawClient(backend, backend.open(backend.render_nodes()[0], os.O_RDWR | os.O_CLOEXEC))


def vram_bo(c: RawClient, mib: int, placement: int = VRAM) -> int:
    return c.bo(mib * MiB, placement, abi.WC)


def small() -> FakeBackend:
    return FakeBackend(vram=64 * MiB)


def test_vram_taken_at_bind_not_create():
    with small() as b:
        c = client(b)
        h = vram_bo(c, 16)
        assert b.device.vram_used() == 0
        vm = c.vm()
        assert c.bind(vm, h, 0x100000, 16 * MiB) == 0
        assert b.device.vram_used() == 16 * MiB
        assert c.mem_regions()[1]["used"] == 16 * MiB
        # unbinding keeps the backing; closing the last handle frees it
        assert c.bind(vm, 0, 0x100000, 16 * MiB, op=abi.OP_UNMAP) == 0
        assert b.device.vram_used() == 16 * MiB
        assert c.call(abi.DRM_IOCTL_GEM_CLOSE, abi.gem_close(h)) == 0
        assert b.device.vram_used() == 0


def test_competing_bind_evicts_other_vms_lru_first():
    with small() as b:
        a, other = client(b), client(b)
        vm_a = a.vm()
        bos = [vram_bo(a, 16) for _ in range(4)]  # fill VRAM: 4 x 16 MiB
        for i, h in enumerate(bos):
            assert a.bind(vm_a, h, 0x1000000 * (i + 1), 16 * MiB) == 0
        assert b.device.vram_used() == 64 * MiB
        vm_b = other.vm()
        hb = vram_bo(other, 24)
        assert other.bind(vm_b, hb, 0x100000, 24 * MiB) == 0
        # the two least recently validated BOs of vm_a went (16 + 16 >= 24), no more
        resident = [b_.resident_vram for b_ in (a_bo(b, a, h) for h in bos)]
        assert resident == [False, False, True, True]
        assert b.device.vram_used() == 56 * MiB


def a_bo(b: FakeBackend, c: RawClient, handle: int):  # type: ignore[no-untyped-def]
    return b.lookup(c.fd).bos[handle]  # type: ignore[union-attr]


def test_same_vm_bos_are_protected():
    with small() as b:
        c = client(b)
        vm = c.vm()
        h1, h2 = vram_bo(c, 48), vram_bo(c, 32)
        assert c.bind(vm, h1, 0x1000000, 48 * MiB) == 0
        assert c.bind(vm, h2, 0x8000000, 32 * MiB) == errno.ENOSPC  # would have to evict its own VM's BO
        assert a_bo(b, c, h1).resident_vram
        # with system memory allowed it falls back there
        h3 = vram_bo(c, 32, placement=VRAM | 1)
        assert c.bind(vm, h3, 0x8000000, 32 * MiB) == 0
        assert not a_bo(b, c, h3).resident_vram and a_bo(b, c, h3).region is not None


def test_no_partial_eviction_when_it_cannot_fit():
    with small() as b:
        a, other = client(b), client(b)
        vm_a, vm_b = a.vm(), other.vm()
        ha = vram_bo(a, 16)
        assert a.bind(vm_a, ha, 0x100000, 16 * MiB) == 0
        hb = vram_bo(other, 40)
        assert other.bind(vm_b, hb, 0x100000, 40 * MiB) == 0
        big = vram_bo(other, 60)
        assert other.bind(vm_b, big, 0x8000000, 60 * MiB) == errno.ENOSPC  # even evicting vm_a's 16 MiB is short
        assert a_bo(b, a, ha).resident_vram  # nothing was evicted for nothing


def test_unbound_resident_bo_is_a_candidate():
    with small() as b:
        c = client(b)
        vm1, vm2 = c.vm(), c.vm()
        h = vram_bo(c, 48)
        assert c.bind(vm1, h, 0x100000, 48 * MiB) == 0
        assert c.bind(vm1, 0, 0x100000, 48 * MiB, op=abi.OP_UNMAP) == 0
        h2 = vram_bo(c, 48)
        assert c.bind(vm2, h2, 0x100000, 48 * MiB) == 0
        assert not a_bo(b, c, h).resident_vram


def test_evicting_preempt_fence_vm_queues_its_worker():
    with small() as b:
        a, other = client(b), client(b)
        vm_a = a.vm(abi.LR_MODE)
        ha = vram_bo(a, 48)
        assert a.bind(vm_a, ha, 0x100000, 48 * MiB) == 0
        q = a.queue(vm_a)
        assert a.exec(q) == 0
        vm_b = other.vm()
        assert other.bind(vm_b, vram_bo(other, 32), 0x100000, 32 * MiB) == 0
        assert b.settle(5.0)
        vm = b.device.lookup_vm(a.fd, vm_a)
        assert vm.rebind_runs == 1
        assert vm.rebind_errors == [-errno.ENOSPC]  # the worker never evicts
        assert vm.state == "banned"  # not restartable: killed
        assert b.device.exec_queue_state(a.fd, q) == "killed"


def test_dma_fence_vm_eviction_queues_nothing_and_exec_revalidates():
    with small() as b:
        a, other = client(b), client(b)
        vm_a = a.vm()
        ha = vram_bo(a, 48)
        assert a.bind(vm_a, ha, 0x100000, 48 * MiB) == 0
        q = a.queue(vm_a)
        vm_b = other.vm()
        hb = vram_bo(other, 32)
        assert other.bind(vm_b, hb, 0x100000, 32 * MiB) == 0
        assert b.device.wq.thread is None  # no worker for a dma-fence VM
        assert not a_bo(b, a, ha).resident_vram
        assert a.exec(q) == 0  # the exec validates, evicting vm_b's BO in turn
        assert a_bo(b, a, ha).resident_vram and not a_bo(b, other, hb).resident_vram


def test_evict_control_surface_without_bos():
    with small() as b:
        c = client(b)
        vm = c.vm(abi.LR_MODE | abi.RESTARTABLE)
        b.evict(c.fd, vm)
        assert b.settle(5.0)
        assert b.device.vm_state(c.fd, vm) == "deactivated"  # idle: quietly
