"""Fault attributes, as ``lib/fault-inject.c`` implements them (spec 6.5).

A :class:`FaultAttr` is armed like its debugfs directory would be: ``probability``
in percent, ``interval`` (fail at most every Nth call), ``times`` (failures left;
-1 for unlimited) and ``space`` (a budget of "size" consumed before failing).
:meth:`FaultAttr.should_fail` follows ``should_fail_ex()``'s order:

1. probability 0 -> never; 2. times == 0 -> no; 3. space > size -> consume, no;
4. interval > 1 -> count, fail only when count % interval == 0;
5. probability <= random(0..99) -> no; otherwise fail and decrement times (unless -1).

The series names its attribute ``rebind_enospc`` (``DECLARE_FAULT_ATTR`` in xe_vm.c,
patch 2/4): when it fires, the rebind worker fails with -ENOSPC.  A fresh
attribute has probability 0, as ``DECLARE_FAULT_ATTR`` leaves it.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

#: Fault attributes the fake driver consults, and where.
KNOWN_FAULTS = {
    "rebind_enospc": "preempt_rebind_work_func: the re-validation fails with -ENOSPC",
}


@dataclass
class FaultAttr:
    """``struct fault_attr``."""

    name: str
    probability: int = 0
    interval: int = 1
    times: int = 1
    space: int = 0
    count: int = 0
    #: how many times it fired, for tests and the CLI
    fired: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0x5EED), repr=False)

    def should_fail(self, size: int = 0) -> bool:
        if self.probability <= 0:
            return False
        if self.times == 0:
            return False
        if self.space > size:
            self.space -= size
            return False
        if self.interval > 1:
            self.count += 1
            if self.count % self.interval:
                return False
        if self.probability <= self.rng.randrange(100):
            return False
        if self.times != -1:
            self.times -= 1
        self.fired += 1
        return True


class FaultRegistry:
    """The device's fault attributes by name (the debugfs directory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attrs = {name: FaultAttr(name) for name in KNOWN_FAULTS}

    def names(self) -> list[str]:
        return sorted(self._attrs)

    def __getitem__(self, name: str) -> FaultAttr:
        try:
            return self._attrs[name]
        except KeyError:
            raise KeyError(f"unknown fault attribute {name!r}; known: {', '.join(self.names())}") from None

    def inject(self, name: str, *, probability: int = 100, times: int = 1, interval: int = 1, space: int = 0) -> None:
        """Arm ``name`` (writing its probability/times/interval/space files)."""
        if not 0 <= probability <= 100:
            raise ValueError(f"probability is a percentage (0..100), not {probability}")
        if times < -1:
            raise ValueError(f"times must be -1 (unlimited) or >= 0, not {times}")
        if interval < 1:
            raise ValueError(f"interval must be >= 1, not {interval}")
        if space < 0:
            raise ValueError(f"space must be >= 0, not {space}")
        attr = self[name]
        with self._lock:
            attr.probability = probability
            attr.times = times
            attr.interval = interval
            attr.space = space
            attr.count = 0

    def should_fail(self, name: str, size: int = 0) -> bool:
        attr = self[name]
        with self._lock:
            return attr.should_fail(size)
