"""``WorkingSet``: kept current by the typed Vm.bind/unbind (on the fake), marks, release, restore."""

from __future__ import annotations

import mmap
from collections.abc import Iterator

import pytest

from xeclient import Device, VmCreateFlag
from xeclient.recovery import WorkingSet
from xeclient.uapi import ffi
from xeclient.vm import Binding, Vm

MiB = 1 << 20


@pytest.fixture
def dev() -> Iterator[Device]:
    with Device.open(backend="fake") as device:
        yield device


@pytest.fixture
def vm(dev: Device) -> Vm:
    return dev.create_vm(VmCreateFlag.LR_MODE | VmCreateFlag.RESTARTABLE)


def test_bind_and_unbind_are_observed(dev: Device, vm: Vm) -> None:
    ws = WorkingSet(vm)
    assert ws in vm.observers and len(ws) == 0
    a = vm.bind(dev.create_bo(16 * MiB), 0x1000000)
    b = vm.bind(dev.create_bo(4 * MiB, placement="sysmem"), 0x4000000)
    assert [e.binding for e in ws] == [a, b]
    assert ws.entry(a).placement == "vram" and ws.entry(a).reclaim_bytes == 16 * MiB
    assert ws.entry(b).placement == "sysmem" and ws.entry(b).reclaim_bytes == 0
    assert ws.vram_bytes == 16 * MiB
    vm.unbind(a)
    assert a not in ws and b in ws and len(ws) == 1
    vm.unbind_all(b.bo)  # type: ignore[arg-type]
    assert len(ws) == 0


def test_userptr_binding(vm: Vm) -> None:
    ws = WorkingSet(vm)
    with mmap.mmap(-1, 2 * 4096) as buf:
        addr = int(ffi.cast("uintptr_t", ffi.from_buffer(buf)))
        binding = vm.bind_userptr(addr, 0x2000000, 4096)
        assert ws.entry(binding).placement == "userptr" and ws.vram_bytes == 0
        vm.unbind(binding)
        del addr, binding


def test_existing_bindings_are_adopted_and_detach_stops_observing(dev: Device, vm: Vm) -> None:
    first = vm.bind(dev.create_bo(8 * MiB), 0x1000000)
    ws = WorkingSet(vm)
    assert first in ws
    ws.detach()
    ws.detach()  # idempotent
    assert ws not in vm.observers
    vm.bind(dev.create_bo(8 * MiB), 0x2000000)
    assert len(ws) == 1


def test_mark_and_touch(dev: Device, vm: Vm) -> None:
    ws = WorkingSet(vm)
    a = vm.bind(dev.create_bo(8 * MiB), 0x1000000)
    entry = ws.entry(a)
    assert not entry.droppable and entry.priority == 0  # nothing droppable unless marked
    ws.mark(a, priority=3, droppable=True, close_bo=False)
    assert (entry.priority, entry.droppable, entry.close_bo) == (3, True, False)
    before = entry.last_use_ns
    ws.touch(a)
    assert entry.last_use_ns >= before
    ws.touch(0x1000000, when_ns=42)
    assert entry.last_use_ns == 42
    with pytest.raises(KeyError):
        ws.entry(0xDEAD000)
    stale = Binding(addr=0x1000000, range=8 * MiB)
    with pytest.raises(KeyError):
        ws.entry(stale)  # same address, not the same binding


def test_a_bo_mapped_twice_reclaims_by_range(dev: Device, vm: Vm) -> None:
    ws = WorkingSet(vm)
    bo = dev.create_bo(16 * MiB)
    x = vm.bind(bo, 0x1000000, range=8 * MiB)
    assert ws.entry(x).reclaim_bytes == 16 * MiB
    y = vm.bind(bo, 0x3000000, offset=8 * MiB, range=8 * MiB)
    assert ws.entry(x).reclaim_bytes == 8 * MiB and ws.entry(y).reclaim_bytes == 8 * MiB
    assert ws.vram_bytes == 16 * MiB


def test_release_unbinds_closes_and_frees_vram(dev: Device, vm: Vm) -> None:
    ws = WorkingSet(vm, droppable_by_default=True)
    bo = dev.create_bo(32 * MiB)
    binding = vm.bind(bo, 0x1000000)
    assert dev.vram_free() == dev.vram_regions()[0].total_size - 32 * MiB
    assert ws.release(ws.entry(binding)) == 32 * MiB
    assert bo.closed and 0x1000000 not in vm.bindings and binding not in ws
    assert dev.vram_free() == dev.vram_regions()[0].total_size
    assert ws.released == []  # no recreate: nothing to remember


def test_release_keeps_the_bo_when_told(dev: Device, vm: Vm) -> None:
    ws = WorkingSet(vm, droppable_by_default=True)
    bo = dev.create_bo(8 * MiB)
    binding = vm.bind(bo, 0x1000000)
    ws.mark(binding, close_bo=False)
    ws.release(ws.entry(binding))
    assert not bo.closed
    bo.close()


def test_restore_recreates_with_the_same_marks(dev: Device, vm: Vm) -> None:
    ws = WorkingSet(vm)
    made: list[Binding] = []

    def recreate() -> Binding:
        made.append(vm.bind(dev.create_bo(8 * MiB), 0x1000000))
        return made[-1]

    binding = recreate()
    ws.mark(binding, priority=5, droppable=True, recreate=recreate)
    ws.release(ws.entry(binding))
    assert len(ws.released) == 1 and len(ws) == 0
    assert ws.restore() == 1
    assert ws.released == [] and len(made) == 2
    entry = ws.entry(made[1])
    assert (entry.priority, entry.droppable, entry.recreate) == (5, True, recreate)


def test_restore_keeps_a_failing_recreate_for_later(dev: Device, vm: Vm) -> None:
    ws = WorkingSet(vm, droppable_by_default=True)
    calls = []

    def recreate() -> Binding | None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "no space")
        return None

    binding = vm.bind(dev.create_bo(8 * MiB), 0x1000000)
    ws.mark(binding, recreate=recreate)
    ws.release(ws.entry(binding))
    assert ws.restore() == 0 and len(ws.released) == 1
    assert ws.restore() == 1 and ws.released == []


def test_repr(dev: Device, vm: Vm) -> None:
    ws = WorkingSet(vm)
    vm.bind(dev.create_bo(16 * MiB), 0x1000000)
    assert "16 MiB VRAM" in repr(ws) and "1 bindings" in repr(ws)
    assert "pinned" in repr(ws.entries()[0])
