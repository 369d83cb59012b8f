"""Trim policies and the shortfall sizing, on a stub VM (no backend).

Each test builds a working set of known entries and checks which bindings a
policy picks for a given shortfall.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from xeclient.recovery import (
    LargestFirst,
    LeastRecentlyUsed,
    PriorityClasses,
    WorkingSet,
    make_policy,
    measure_shortfall,
)
from xeclient.vm import Binding

MiB = 1 << 20


class StubBo:
    def __init__(self, size: int, in_vram: bool = True) -> None:
        self.size = size
        self.in_vram = in_vram
        self.closed = False

    def close(self) -> None:
        self.closed = True


class StubDevice:
    def __init__(self, free: int) -> None:
        self.free = free

    def vram_free(self) -> int:
        return self.free


class StubVm:
    """What WorkingSet uses of a Vm: id, bindings, observers, device, unbind."""

    def __init__(self, free: int = 0) -> None:
        self.id = 1
        self.bindings: dict[int, Binding] = {}
        self.observers: list[Any] = []
        self.device = StubDevice(free)
        self.unbound: list[int] = []

    def bind(self, size: int, addr: int, *, in_vram: bool = True, bo_size: int | None = None) -> Binding:
        b = Binding(addr=addr, range=size, bo=StubBo(bo_size or size, in_vram))  # type: ignore[arg-type]
        self.bindings[addr] = b
        for o in list(self.observers):
            o.on_bind(self, b)
        return b

    def unbind(self, b: Binding) -> None:
        del self.bindings[b.addr]
        self.unbound.append(b.addr)
        for o in list(self.observers):
            o.on_unbind(self, b)


def make_ws(
    sizes_mib: list[int], *, free: int = 0, clock_start: int = 1000
) -> tuple[StubVm, WorkingSet, list[Binding]]:
    """Bindings at 0x1000000 * (i+1) of the given sizes, bound (and used) in order, all droppable."""
    ticks = iter(range(clock_start, clock_start + 10_000))
    vm = StubVm(free)
    ws = WorkingSet(vm, droppable_by_default=True, clock=lambda: next(ticks))  # type: ignore[arg-type]
    bindings = [vm.bind(s * MiB, 0x1000000 * (i + 1)) for i, s in enumerate(sizes_mib)]
    return vm, ws, bindings


def addrs(bindings: list[Binding]) -> list[int]:
    return [b.addr for b in bindings]


# --- least recently used -------------------------------------------------------------------
def test_lru_takes_oldest_first_until_the_shortfall_is_covered() -> None:
    _, ws, b = make_ws([16, 16, 16, 16])
    assert addrs(LeastRecentlyUsed().select(ws, 16 * MiB)) == [b[0].addr]
    assert addrs(LeastRecentlyUsed().select(ws, 17 * MiB)) == [b[0].addr, b[1].addr]
    assert addrs(LeastRecentlyUsed().select(ws, 1)) == [b[0].addr]


def test_lru_follows_touch() -> None:
    _, ws, b = make_ws([16, 16, 16])
    ws.touch(b[0], when_ns=10**9)  # used last
    ws.touch(b[2], when_ns=5)  # used first
    assert addrs(LeastRecentlyUsed().select(ws, 32 * MiB)) == [b[2].addr, b[1].addr]


def test_no_shortfall_selects_nothing() -> None:
    _, ws, _ = make_ws([16, 16])
    for policy in (LeastRecentlyUsed(), LargestFirst(), PriorityClasses()):
        assert policy.select(ws, 0) == []


# --- largest first -----------------------------------------------------------------------------
def test_largest_first_takes_the_biggest() -> None:
    _, ws, b = make_ws([8, 64, 16, 32])
    assert addrs(LargestFirst().select(ws, 10 * MiB)) == [b[1].addr]
    assert addrs(LargestFirst().select(ws, 80 * MiB)) == [b[1].addr, b[3].addr]


def test_largest_first_breaks_ties_by_lru() -> None:
    _, ws, b = make_ws([16, 16, 16])
    ws.touch(b[0], when_ns=10**9)
    assert addrs(LargestFirst().select(ws, 32 * MiB)) == [b[1].addr, b[2].addr]


# --- priority classes ------------------------------------------------------------------------
def test_priority_classes_lowest_class_first_lru_within() -> None:
    _, ws, b = make_ws([16, 16, 16, 16, 64])
    ws.mark(b[0], priority=2)
    ws.mark(b[1], priority=1)
    ws.mark(b[2], priority=0)
    ws.mark(b[3], priority=1)
    ws.mark(b[4], priority=2)
    assert addrs(PriorityClasses().select(ws, 16 * MiB)) == [b[2].addr]
    assert addrs(PriorityClasses().select(ws, 40 * MiB)) == [b[2].addr, b[1].addr, b[3].addr]
    # inside a class another order can be asked for
    assert addrs(PriorityClasses(within=LargestFirst()).select(ws, 60 * MiB)) == [
        b[2].addr,
        b[1].addr,
        b[3].addr,
        b[4].addr,
    ]


# --- what is never selected ---------------------------------------------------------------------
def test_pinned_and_sysmem_bindings_are_never_selected() -> None:
    vm, ws, b = make_ws([16, 16])
    ws.mark(b[0], droppable=False)
    sysmem = vm.bind(64 * MiB, 0x9000000, in_vram=False)
    assert ws.entry(sysmem).placement == "sysmem" and ws.entry(sysmem).reclaim_bytes == 0
    for policy in (LeastRecentlyUsed(), LargestFirst(), PriorityClasses()):
        assert addrs(policy.select(ws, 1024 * MiB)) == [b[1].addr], policy


def test_nothing_droppable_by_default() -> None:
    vm = StubVm()
    ws = WorkingSet(vm)  # type: ignore[arg-type]
    vm.bind(16 * MiB, 0x1000000)
    assert LeastRecentlyUsed().select(ws, 16 * MiB) == []


def test_shortfall_larger_than_everything_selects_all_droppable() -> None:
    _, ws, b = make_ws([16, 32])
    assert sorted(addrs(LeastRecentlyUsed().select(ws, 1 << 40))) == sorted(addrs(b))


@pytest.mark.parametrize(
    "name, cls", [("lru", LeastRecentlyUsed), ("largest", LargestFirst), ("priority", PriorityClasses)]
)
def test_make_policy(name: str, cls: Callable[[], object]) -> None:
    policy = make_policy(name)
    assert isinstance(policy, cls) and policy.name == name  # type: ignore[arg-type]


def test_make_policy_unknown() -> None:
    with pytest.raises(ValueError, match="lru"):
        make_policy("random")


# --- the shortfall -------------------------------------------------------------------------------
def test_shortfall_zero_when_the_whole_working_set_fits() -> None:
    _, ws, _ = make_ws([16, 16], free=32 * MiB)
    s = measure_shortfall(ws)
    assert s.bytes == 0 and s.free == 32 * MiB and s.working_set == 32 * MiB


def test_shortfall_reads_free_vram_from_the_device_now() -> None:
    vm, ws, _ = make_ws([16, 16, 16], free=0)
    assert measure_shortfall(ws).free == 0
    vm.device.free = 10 * MiB
    s = measure_shortfall(ws)
    assert s.free == 10 * MiB
    assert s.bytes == 6 * MiB  # one whole 16 MiB BO more than what is free


def test_shortfall_first_attempt_is_one_binding_then_doubles() -> None:
    _, ws, _ = make_ws([16] * 8, free=0)
    assert measure_shortfall(ws, attempt=1).bytes == 16 * MiB
    assert measure_shortfall(ws, attempt=2, already_trimmed=16 * MiB).bytes == 16 * MiB  # cumulative 32
    assert measure_shortfall(ws, attempt=3, already_trimmed=32 * MiB).bytes == 32 * MiB  # cumulative 64


def test_shortfall_capped_by_working_set_minus_free() -> None:
    _, ws, _ = make_ws([16, 16], free=8 * MiB)
    assert measure_shortfall(ws, attempt=10).bytes == 24 * MiB


def test_shortfall_explicit_free_is_not_reread() -> None:
    _, ws, _ = make_ws([16], free=0)
    assert measure_shortfall(ws, free=16 * MiB).bytes == 0
    assert "free 16 MiB" in str(measure_shortfall(ws, free=16 * MiB))
