"""Trim policies: which bindings to give back when a VM's rebind worker ran out of VRAM.

A policy is a small object with ``select(working_set, shortfall_bytes) ->
list[Binding]``: droppable VRAM bindings, in the order it prefers to release
them, whose ``reclaim_bytes`` add up to at least ``shortfall_bytes`` (or every
droppable VRAM binding when they cannot).  Bindings outside VRAM are never
selected: releasing them does not help a VRAM shortfall.  Three are provided:

* :class:`LeastRecentlyUsed` -- oldest ``last_use_ns`` first (binding order breaks ties);
* :class:`LargestFirst` -- biggest ``reclaim_bytes`` first (fewest unbinds);
* :class:`PriorityClasses` -- lowest ``priority`` class first, and inside a class
  another policy's order (LRU by default).

How the shortfall is computed (:func:`measure_shortfall`)
---------------------------------------------------------
The rebind worker failed with ENOSPC/ENOMEM because the VM's evicted BOs
(``demand``) did not fit in the free VRAM.  The UAPI says how much VRAM is free
(``DRM_IOCTL_XE_DEVICE_QUERY`` / ``MEM_REGIONS``: total - used, read at the
moment of the decision through :meth:`Device.vram_free`) but not which of a VM's
BOs are resident, so ``demand`` itself cannot be read: it is only known to lie
in ``(free, W]`` where ``W`` is the VM's VRAM working set.  The shortfall is
therefore sized from what is known and widened only by the kernel's answers:

1. ``free >= W``: everything the VM could need fits; shortfall 0 (a transient or
   injected failure: restart without trimming).
2. Otherwise the first attempt releases the least that can matter,
   ``max(smallest_binding - free, 1 page)``: the kernel validates whole BOs, so at
   least one BO did not fit into ``free``.
3. Each further attempt of the same incident (the kernel failed again after the
   restart, proving the previous trim too small) doubles the cumulative trim:
   ``shortfall_k = 2**(k-1) * first - already_trimmed`` -- a doubling search that
   gives back at most about twice what was needed, in at most ``log2(W/first)+1``
   attempts.
4. Always capped at ``W - free``: more can never be needed.

Releasing a resident BO raises ``free`` by its size; releasing an evicted one
lowers ``demand`` by its size: either way the deficit shrinks by
``reclaim_bytes``, which is why one number serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .working_set import Entry, WorkingSet

if TYPE_CHECKING:
    from ..vm import Binding

PAGE_SIZE = 4096


class Policy(Protocol):
    """What a trim policy is: a name and ``select``."""

    name: str

    def select(self, working_set: WorkingSet, shortfall_bytes: int) -> list[Binding]: ...


def take_until(ordered: Iterable[Entry], shortfall_bytes: int) -> list[Binding]:
    """The prefix of ``ordered`` (droppable VRAM entries only) covering ``shortfall_bytes``."""
    if shortfall_bytes <= 0:
        return []
    picked: list[Binding] = []
    total = 0
    for entry in ordered:
        if not entry.droppable or entry.reclaim_bytes <= 0:
            continue
        picked.append(entry.binding)
        total += entry.reclaim_bytes
        if total >= shortfall_bytes:
            break
    return picked


class OrderedPolicy:
    """A policy defined by a sort key over the entries (lower key = released first)."""

    name = "ordered"

    def order(self, entries: list[Entry]) -> list[Entry]:
        raise NotImplementedError

    def select(self, working_set: WorkingSet, shortfall_bytes: int) -> list[Binding]:
        return take_until(self.order(working_set.entries()), shortfall_bytes)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class LeastRecentlyUsed(OrderedPolicy):
    """Release the bindings used longest ago (``WorkingSet.touch``) first."""

    name = "lru"

    def order(self, entries: list[Entry]) -> list[Entry]:
        return sorted(entries, key=lambda e: (e.last_use_ns, e.seq))


class LargestFirst(OrderedPolicy):
    """Release the biggest bindings first: the fewest unbinds for a given shortfall."""

    name = "largest"

    def order(self, entries: list[Entry]) -> list[Entry]:
        return sorted(entries, key=lambda e: (-e.reclaim_bytes, e.last_use_ns, e.seq))


class PriorityClasses(OrderedPolicy):
    """Release the lowest priority class first; inside a class, ``within``'s order (LRU)."""

    name = "priority"

    def __init__(self, within: OrderedPolicy | None = None) -> None:
        self.within = within or LeastRecentlyUsed()

    def order(self, entries: list[Entry]) -> list[Entry]:
        ordered: list[Entry] = []
        for priority in sorted({e.priority for e in entries}):
            ordered += self.within.order([e for e in entries if e.priority == priority])
        return ordered

    def __repr__(self) -> str:
        return f"<PriorityClasses within={self.within!r}>"


POLICIES: dict[str, Callable[[], OrderedPolicy]] = {
    "lru": LeastRecentlyUsed,
    "largest": LargestFirst,
    "priority": PriorityClasses,
}


def make_policy(name: str) -> OrderedPolicy:
    """A policy by name: ``lru``, ``largest`` or ``priority``."""
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}: choose one of {', '.join(POLICIES)}") from None


@dataclass(frozen=True)
class Shortfall:
    """One sizing decision, with its inputs (recorded in the incident's timeline)."""

    free: int  #: free VRAM read from the device for this decision
    working_set: int  #: W: the VM's VRAM working set
    attempt: int
    already_trimmed: int
    bytes: int  #: what the policy is asked to release now

    def __str__(self) -> str:
        return (
            f"free {_mib(self.free)}, working set {_mib(self.working_set)}, attempt {self.attempt}, "
            f"trimmed so far {_mib(self.already_trimmed)} -> release {_mib(self.bytes)}"
        )


def measure_shortfall(
    working_set: WorkingSet, *, attempt: int = 1, already_trimmed: int = 0, free: int | None = None
) -> Shortfall:
    """Size the trim of attempt ``attempt`` (see the module docstring).

    ``free`` defaults to ``working_set.vm.device.vram_free()``, read now.
    """
    if free is None:
        free = working_set.vm.device.vram_free()
    w = working_set.vram_bytes
    if free >= w or w == 0:
        return Shortfall(free, w, attempt, already_trimmed, 0)
    first = max(working_set.smallest_vram_bytes - free, PAGE_SIZE)
    wanted = first * (1 << max(0, attempt - 1)) - already_trimmed
    wanted = min(max(wanted, PAGE_SIZE), w - free)
    return Shortfall(free, w, attempt, already_trimmed, wanted)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n % (1 << 20) else f"{n >> 20} MiB"
