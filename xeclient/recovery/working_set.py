"""``WorkingSet``: what one VM has bound, as the recovery layer needs to know it.

A working set observes its :class:`~xeclient.vm.Vm` (it registers itself in
``vm.observers``), so every typed ``Vm.bind``/``bind_userptr``/``unbind``/
``unbind_all`` keeps it current without the client doing anything.  Per binding
it keeps what a trim policy decides by:

* ``size`` and ``placement`` (``"vram"``, ``"sysmem"``, ``"userptr"``), and
  ``reclaim_bytes``: the VRAM that giving the binding back can make available;
* ``last_use_ns`` (``time.monotonic_ns()``), refreshed by :meth:`WorkingSet.touch`;
* ``priority`` (higher = keep longer), ``droppable`` (may recovery unbind it?),
  ``close_bo`` (may recovery also close the BO?) and ``recreate`` (a callable
  that binds it again later), all set with :meth:`WorkingSet.mark`.

Nothing is droppable unless marked (or the set is built with
``droppable_by_default=True``): unbinding memory a running job still reads
faults the job, so the client has to say what it can live without.

Bindings the recovery layer released are remembered (``released``) when they
can be re-created; :meth:`WorkingSet.restore` re-creates them once memory is
back, and re-applies their marks to the new bindings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..vm import Binding, Vm

log = logging.getLogger("xeclient.recovery.working_set")

#: ``recreate`` callables return the new binding (or None when they bound nothing).
Recreate = Callable[[], "Binding | None"]


@dataclass
class Entry:
    """One binding of the working set, with the facts a policy needs."""

    binding: Binding
    placement: str  #: "vram" (the BO may live in VRAM), "sysmem" or "userptr"
    last_use_ns: int
    priority: int = 0
    droppable: bool = False
    close_bo: bool = True
    recreate: Recreate | None = None
    #: monotonic order of binding (ties in last_use are broken by it: deterministic)
    seq: int = 0
    #: VRAM bytes giving this binding back can make available (set by the working set)
    reclaim_bytes: int = 0

    @property
    def addr(self) -> int:
        return self.binding.addr

    @property
    def size(self) -> int:
        return self.binding.range

    @property
    def in_vram(self) -> bool:
        return self.placement == "vram"

    def __repr__(self) -> str:
        flags = "droppable" if self.droppable else "pinned"
        return f"<Entry 0x{self.addr:x} {self.size >> 10} KiB {self.placement} prio={self.priority} {flags}>"


@dataclass
class Released:
    """A binding recovery gave back, kept so :meth:`WorkingSet.restore` can re-create it."""

    addr: int
    size: int
    priority: int
    droppable: bool
    close_bo: bool
    recreate: Recreate
    released_ns: int = field(default_factory=time.monotonic_ns)


class WorkingSet:
    """The bindings of one VM, kept current through ``vm.observers``.  Thread-safe."""

    def __init__(
        self, vm: Vm, *, droppable_by_default: bool = False, clock: Callable[[], int] = time.monotonic_ns
    ) -> None:
        self.vm = vm
        self.droppable_by_default = droppable_by_default
        self._clock = clock
        self._lock = threading.RLock()
        self._entries: dict[int, Entry] = {}
        self._seq = 0
        self.released: list[Released] = []
        self.attached = False
        for binding in list(vm.bindings.values()):
            self._add(binding)
        self.attach()

    # --- observation (BindObserver) ----------------------------------------------------
    def attach(self) -> None:
        """Observe the VM (done by the constructor); idempotent."""
        with self._lock:
            if not self.attached:
                self.vm.observers.append(self)
                self.attached = True

    def detach(self) -> None:
        """Stop observing the VM; idempotent."""
        with self._lock:
            if self.attached:
                self.attached = False
                try:
                    self.vm.observers.remove(self)
                except ValueError:
                    pass

    def on_bind(self, vm: Vm, binding: Binding) -> None:
        if vm is self.vm:
            self._add(binding)

    def on_unbind(self, vm: Vm, binding: Binding) -> None:
        if vm is not self.vm:
            return
        with self._lock:
            entry = self._entries.get(binding.addr)
            if entry is not None and entry.binding is binding:
                del self._entries[binding.addr]
                self._update_reclaim()

    def _add(self, binding: Binding) -> None:
        placement = "userptr" if binding.bo is None else "vram" if binding.bo.in_vram else "sysmem"
        with self._lock:
            self._seq += 1
            self._entries[binding.addr] = Entry(
                binding=binding,
                placement=placement,
                last_use_ns=self._clock(),
                droppable=self.droppable_by_default,
                seq=self._seq,
            )
            self._update_reclaim()

    def _update_reclaim(self) -> None:
        """``reclaim_bytes``: the BO's size for its only binding here, else the range.

        A BO bound once is freed whole when that binding goes (and its handle is
        closed); a BO mapped several times is only partly given back by one unbind,
        so it is counted by the bytes mapped (an estimate, said so here).  BOs
        outside VRAM reclaim nothing.
        """
        counts: dict[int, int] = {}
        for entry in self._entries.values():
            bo = entry.binding.bo
            if bo is not None:
                counts[id(bo)] = counts.get(id(bo), 0) + 1
        for entry in self._entries.values():
            bo = entry.binding.bo
            if bo is None or not entry.in_vram:
                entry.reclaim_bytes = 0
            elif counts[id(bo)] == 1:
                entry.reclaim_bytes = bo.size
            else:
                entry.reclaim_bytes = entry.size

    # --- the client's hints --------------------------------------------------------------
    def entry(self, target: Binding | int) -> Entry:
        """The entry of a binding (or of the binding at an address); KeyError if unknown."""
        addr = target if isinstance(target, int) else target.addr
        with self._lock:
            entry = self._entries.get(addr)
            if entry is None or (not isinstance(target, int) and entry.binding is not target):
                raise KeyError(f"{target!r} is not in the working set of {self.vm!r}")
            return entry

    def mark(
        self,
        target: Binding | int,
        *,
        priority: int | None = None,
        droppable: bool | None = None,
        close_bo: bool | None = None,
        recreate: Recreate | None = None,
    ) -> Entry:
        """Set a binding's priority (higher = keep longer), whether recovery may drop it,
        whether it may also close the BO, and how to re-create it."""
        with self._lock:
            entry = self.entry(target)
            if priority is not None:
                entry.priority = priority
            if droppable is not None:
                entry.droppable = droppable
            if close_bo is not None:
                entry.close_bo = close_bo
            if recreate is not None:
                entry.recreate = recreate
            return entry

    def touch(self, target: Binding | int, when_ns: int | None = None) -> None:
        """Record a use of a binding now (or at ``when_ns``): LRU keeps it longer."""
        with self._lock:
            self.entry(target).last_use_ns = self._clock() if when_ns is None else when_ns

    # --- views ---------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        """A snapshot of the entries, in binding order."""
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: e.seq)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, target: object) -> bool:
        with self._lock:
            if isinstance(target, int):
                return target in self._entries
            addr = getattr(target, "addr", None)
            entry = self._entries.get(addr) if isinstance(addr, int) else None
            return entry is not None and entry.binding is target

    @property
    def vram_bytes(self) -> int:
        """VRAM this VM's bindings hold when resident (each BO once)."""
        with self._lock:
            return sum(e.reclaim_bytes for e in self._entries.values())

    @property
    def droppable_vram_bytes(self) -> int:
        with self._lock:
            return sum(e.reclaim_bytes for e in self._entries.values() if e.droppable)

    @property
    def smallest_vram_bytes(self) -> int:
        """The smallest VRAM a single binding holds (0 when none is in VRAM)."""
        with self._lock:
            sizes = [e.reclaim_bytes for e in self._entries.values() if e.reclaim_bytes]
            return min(sizes) if sizes else 0

    # --- giving back and getting back ----------------------------------------------------
    def release(self, entry: Entry) -> int:
        """Unbind ``entry`` (and close its BO when allowed and unbound everywhere here).

        Returns the VRAM bytes given back (its ``reclaim_bytes``).  Raises the
        typed layer's ``IoctlError`` if the unbind fails; the entry then stays.
        """
        with self._lock:
            binding = entry.binding
            reclaimed = entry.reclaim_bytes
            self.vm.unbind(binding)  # observers drop the entry
            bo = binding.bo
            if bo is not None and entry.close_bo and not any(e.binding.bo is bo for e in self._entries.values()):
                bo.close()
            if entry.recreate is not None:
                self.released.append(
                    Released(entry.addr, entry.size, entry.priority, entry.droppable, entry.close_bo, entry.recreate)
                )
            log.debug("released %r from vm %d (%d bytes of VRAM)", entry, self.vm.id, reclaimed)
            return reclaimed

    def restore(self) -> int:
        """Re-create every released binding that has a ``recreate``; returns how many came back.

        Each new binding gets the released one's marks.  A recreate that raises is
        kept for the next call (and logged).
        """
        with self._lock:
            pending, self.released = self.released, []
        restored = 0
        for item in pending:
            try:
                binding = item.recreate()
            except Exception as exc:  # the client's callable: keep it for later
                log.warning("re-creating 0x%x in vm %d failed: %s", item.addr, self.vm.id, exc)
                with self._lock:
                    self.released.append(item)
                continue
            restored += 1
            if binding is not None and binding in self:
                self.mark(
                    binding,
                    priority=item.priority,
                    droppable=item.droppable,
                    close_bo=item.close_bo,
                    recreate=item.recreate,
                )
        return restored

    def __repr__(self) -> str:
        return f"<WorkingSet vm={self.vm.id} {len(self)} bindings, {self.vram_bytes >> 20} MiB VRAM>"
