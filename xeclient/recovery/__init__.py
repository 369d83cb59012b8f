"""Recovery: give VRAM back and restart a paused VM.

* :class:`WorkingSet` -- what a VM has bound, kept current through ``vm.observers``;
* policies -- :class:`LeastRecentlyUsed`, :class:`LargestFirst`, :class:`PriorityClasses`
  (``select(working_set, shortfall_bytes)``) and :func:`measure_shortfall`, which sizes
  the trim from the device's free VRAM;
* :class:`VmSupervisor` (alias :class:`RecoveryAgent`) -- listens for VM_ERR, trims,
  restarts with bounded backoff, and records each :class:`Incident`.
"""

from __future__ import annotations

from .agent import Attempt, Incident, RecoveryAgent, Step, VmSupervisor, latency_summary
from .policies import (
    POLICIES,
    LargestFirst,
    LeastRecentlyUsed,
    OrderedPolicy,
    Policy,
    PriorityClasses,
    Shortfall,
    make_policy,
    measure_shortfall,
)
from .working_set import Entry, Released, WorkingSet

__all__ = [
    "POLICIES",
    "Attempt",
    "Entry",
    "Incident",
    "LargestFirst",
    "LeastRecentlyUsed",
    "OrderedPolicy",
    "Policy",
    "PriorityClasses",
    "RecoveryAgent",
    "Released",
    "Shortfall",
    "Step",
    "VmSupervisor",
    "WorkingSet",
    "latency_summary",
    "make_policy",
    "measure_shortfall",
]
