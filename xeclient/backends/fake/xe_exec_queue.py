"""Exec queues and submission: EXEC_QUEUE_CREATE/DESTROY/GET/SET_PROPERTY, EXEC, syncs.

Models ``xe_exec_queue.c``, ``xe_exec.c``, ``xe_sync.c`` and ``xe_wait_user_fence.c``.

**Long-running jobs.**  On a VM in LR mode a job never completes by itself: after
``DRM_IOCTL_XE_EXEC`` with ``num_batch_buffer >= 1`` it stays *in flight* on its
queue until the queue is destroyed (or killed by ``xe_vm_kill``).  A queue with a
job in flight is not idle, so the rebind worker re-validates instead of
deactivating.  :meth:`XeDevice.exec_queue_state` reports ``idle`` / ``running`` /
``suspended`` (its VM is preempted or paused) / ``killed``.  At most
:data:`LR_RING_JOBS` jobs fit in an LR queue's ring; one more is -EAGAIN
(EWOULDBLOCK), as ``xe_exec_queue_ring_full``.

On a VM outside LR mode a job completes at once (its BOs are re-validated first,
evicting by the client rule) and its user-fence syncs are written.
"""

from __future__ import annotations

import errno
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...uapi.constants import EngineClass, SyncFlag, SyncType
from . import usercopy
from .xe_bo import xe_bo_validate, xe_user_extensions
from .xe_device import XeFile, xa_alloc

if TYPE_CHECKING:
    from .xe_vm import XeVM

XE_HW_ENGINE_MAX_INSTANCE = 16  # [INFERRED] the value is not in the spec
DRM_XE_EXEC_QUEUE_LOW_LATENCY_HINT = 1
LR_RING_JOBS = 64
SYNC_SIZE = 48
DRM_XE_MAX_SYNCS = 1024
UFENCE_WAIT_MAX_OP = 5
DRM_XE_UFENCE_WAIT_FLAG_ABSTIME = 1


class XeExecQueue:
    """``struct xe_exec_queue``."""

    def __init__(self, xef: XeFile, vm: XeVM, engine_class: int, width: int, num_placements: int, flags: int) -> None:
        self.xef = xef
        self.vm = vm
        self.id = 0
        self.engine_class = engine_class
        self.width = width
        self.num_placements = num_placements
        self.flags = flags
        self.is_vm_bind = engine_class == EngineClass.VM_BIND  #: EXEC_QUEUE_FLAG_VM
        self.killed = False
        self.jobs = 0  #: LR jobs in flight
        self.submitted = 0  #: jobs ever submitted, for tests
        self.priority = 1

    def __repr__(self) -> str:
        return f"<XeExecQueue {self.id} class={self.engine_class} vm={self.vm.id} {self.state}>"

    @property
    def idle(self) -> bool:
        return self.killed or self.jobs == 0

    @property
    def state(self) -> str:
        if self.killed:
            return "killed"
        if self.jobs == 0:
            return "idle"
        if self.vm.suspended or self.vm.rebind_deactivated or self.vm.closed_or_banned:
            return "suspended"
        return "running"


def xe_exec_queue_kill(q: XeExecQueue) -> None:
    """``xe_exec_queue_kill()``: cancel its jobs and unlink it from the VM's preempt list."""
    q.killed = True
    q.jobs = 0
    if q in q.vm.preempt_exec_queues:
        q.vm.preempt_exec_queues.remove(q)


# --- syncs (xe_sync.c) ---------------------------------------------------------------
@dataclass
class XeSyncEntry:
    type: int
    flags: int
    addr: int
    timeline_value: int

    @property
    def is_user_fence(self) -> bool:
        return self.type == SyncType.USER_FENCE


def xe_sync_entries_parse(
    xef: XeFile, addr: int, num: int, *, lr_mode: bool, disallow_user_fence: bool = False
) -> tuple[int, list[XeSyncEntry]]:
    """``xe_sync_entry_parse()`` for each of ``num`` syncs at ``addr``.

    The fake has no syncobjs (DRM_IOCTL_SYNCOBJ_CREATE is not modelled), so a
    (timeline) syncobj sync fails its lookup with -ENOENT after its checks.
    """
    syncs: list[XeSyncEntry] = []
    for i in range(num):
        try:
            raw = usercopy.copy_from_user(addr + i * SYNC_SIZE, SYNC_SIZE)
        except usercopy.EFault:
            return -errno.EFAULT, []
        _ext, stype, flags, value, timeline, r0, r1 = struct.unpack("<QIIQQQQ", raw)
        if flags & ~int(SyncFlag.SIGNAL) or r0 or r1:
            return -errno.EINVAL, []
        signal = bool(flags & SyncFlag.SIGNAL)
        if stype in (SyncType.SYNCOBJ, SyncType.TIMELINE_SYNCOBJ):
            if lr_mode and signal:
                return -errno.EOPNOTSUPP, []
            if value >> 32:
                return -errno.EINVAL, []
            if stype == SyncType.TIMELINE_SYNCOBJ and timeline == 0:
                return -errno.EINVAL, []
            return -errno.ENOENT, []
        if stype == SyncType.USER_FENCE:
            if disallow_user_fence:
                return -errno.EOPNOTSUPP, []
            if not signal:
                return -errno.EOPNOTSUPP, []
            if value & 0x7:
                return -errno.EINVAL, []
            syncs.append(XeSyncEntry(stype, flags, value, timeline))
            continue
        return -errno.EINVAL, []
    return 0, syncs


def xe_sync_entries_signal(syncs: list[XeSyncEntry]) -> None:
    """Signal user fences: write ``timeline_value`` at ``addr`` (a fault is ignored, as in the worker)."""
    for s in syncs:
        if s.is_user_fence:
            try:
                usercopy.copy_to_user(s.addr, struct.pack("<Q", s.timeline_value))
            except usercopy.EFault:
                pass


def xe_exec_user_fences_signal(vm: Any, syncs: list[XeSyncEntry]) -> None:
    """Complete an exec job's user fences: the ring stores ``timeline_value`` at a *GPU* address.

    For exec, ``xe_sync_entry_parse`` keeps ``addr`` as a GPU address in the VM
    (not a user pointer, unlike VM_BIND); the job's ring writes it when the batch
    completes.  The fake can make that write visible only where the address lies
    in a userptr mapping, whose backing is process memory: it is translated to
    the CPU address and written there.  Elsewhere (BO-backed or unmapped) there is
    no CPU-visible effect, as on hardware without a CPU mapping of the BO.
    """
    for s in syncs:
        if not s.is_user_fence:
            continue
        for vma in vm.vmas:
            if vma.userptr and vma.addr <= s.addr and s.addr + 8 <= vma.addr + vma.range:
                try:
                    usercopy.copy_to_user(vma.userptr + (s.addr - vma.addr), struct.pack("<Q", s.timeline_value))
                except usercopy.EFault:
                    pass
                break


# --- EXEC_QUEUE_CREATE / DESTROY / properties ------------------------------------------
def _exec_queue_set_property(xef: XeFile, q: XeExecQueue | None) -> Any:
    xe = xef.device

    def set_property(prop: int, value: int) -> int:
        if prop == 0:  # PRIORITY
            if value > 2:
                return -errno.EINVAL
            if value > xe.max_exec_queue_priority():
                return -errno.EPERM
            if q is not None:
                q.priority = value
            return 0
        if prop == 1:  # TIMESLICE (us): any value within the kernel's range is accepted
            return 0
        if prop == 2:  # PXP_TYPE
            if value not in (0, 1):
                return -errno.EINVAL
            return 0 if value == 0 else -errno.ENODEV
        return -errno.EINVAL

    return set_property


def calc_validate_logical_mask(xef: XeFile, eci: list[tuple[int, int, int]], width: int, num_placements: int) -> int:
    """``calc_validate_logical_mask()``: every placement a real engine of one class/GT, parallel contiguous."""
    xe = xef.device
    mask = 0
    cls0, _inst0, gt0 = eci[0]
    for j in range(num_placements):
        for i in range(width):
            cls, inst, gt = eci[j * width + i]
            if not xe.hw_engine(cls, inst, gt) or cls != cls0 or gt != gt0:
                return 0
            if i and inst != eci[j * width + i - 1][1] + 1:
                return 0
            if i == 0:
                mask |= 1 << inst
    return mask


def xe_exec_queue_create_ioctl(xef: XeFile, args: Any) -> int:
    """``xe_exec_queue_create_ioctl()`` (spec 5.4), steps 1-9 in order.

    Step 6's SR-IOV scheduling-group check cannot fire: the fake is not a VF.
    """
    xe = xef.device
    if args.flags & ~DRM_XE_EXEC_QUEUE_LOW_LATENCY_HINT or args.reserved[0] or args.reserved[1]:
        return -errno.EINVAL
    width, num_placements = int(args.width), int(args.num_placements)
    n = width * num_placements
    if not n or n > XE_HW_ENGINE_MAX_INSTANCE:
        return -errno.EINVAL
    try:
        raw = usercopy.copy_from_user(int(args.instances), 8 * n)
    except usercopy.EFault:
        return -errno.EFAULT
    eci = [struct.unpack_from("<HHH", raw, 8 * k) for k in range(n)]
    if eci[0][2] != 0:  # xe_device_get_gt(): one GT
        return -errno.EINVAL
    vm: XeVM | None
    if eci[0][0] == EngineClass.VM_BIND:
        if width != 1 or num_placements != 1 or eci[0][1] != 0:
            return -errno.EINVAL
        vm = xef.vms.get(int(args.vm_id))
        if vm is None:
            return -errno.ENOENT
        if vm.closed_or_banned:
            return -errno.ENOENT
    else:
        if not calc_validate_logical_mask(xef, eci, width, num_placements):
            return -errno.EINVAL
        if not xe.hw_engine(*eci[0]):
            return -errno.EINVAL
        vm = xef.vms.get(int(args.vm_id))
        if vm is None:
            return -errno.ENOENT
        if vm.closed_or_banned:
            return -errno.ENOENT
    q = XeExecQueue(xef, vm, eci[0][0], width, num_placements, int(args.flags))
    err = xe_user_extensions(int(args.extensions), _exec_queue_set_property(xef, q), valid_properties=3)
    if err:
        return err
    if not q.is_vm_bind and vm.in_preempt_fence_mode:
        vm.preempt_exec_queues.append(q)  # xe_vm_add_compute_exec_queue: num_exec_queues++
    qid = xa_alloc(xef.exec_queues)
    xef.exec_queues[qid] = q
    q.id = qid
    args.exec_queue_id = qid
    return 0


def xe_exec_queue_destroy_ioctl(xef: XeFile, args: Any) -> int:
    """``xe_exec_queue_destroy_ioctl()``: pad/reserved -EINVAL, unknown -ENOENT, then kill (jobs end)."""
    if args.pad or args.reserved[0] or args.reserved[1]:
        return -errno.EINVAL
    q = xef.exec_queues.pop(int(args.exec_queue_id), None)
    if q is None:
        return -errno.ENOENT
    xe_exec_queue_kill(q)
    return 0


def xe_exec_queue_get_property_ioctl(xef: XeFile, args: Any) -> int:
    """``xe_exec_queue_get_property_ioctl()``: BAN (0) reports whether the queue was killed/reset."""
    if args.reserved[0] or args.reserved[1]:
        return -errno.EINVAL
    q = xef.exec_queues.get(int(args.exec_queue_id))
    if q is None:
        return -errno.ENOENT
    if args.property != 0:
        return -errno.EINVAL
    args.value = 1 if q.killed else 0
    return 0


def xe_exec_queue_set_property_ioctl(xef: XeFile, args: Any) -> int:
    """``xe_exec_queue_set_property_ioctl()``: only multi-queue-group properties exist, which the
    fake does not model, so every property is -EINVAL after the reserved check."""
    if args.extensions or args.reserved[0] or args.reserved[1]:
        return -errno.EINVAL
    return -errno.EINVAL


# --- EXEC ------------------------------------------------------------------------------
def xe_exec_ioctl(xef: XeFile, args: Any) -> int:
    """``xe_exec_ioctl()`` (mainline xe_exec.c; spec 6.1 for the banned VM and reactivation).

    Order: extensions/pad/reserved -EINVAL; queue lookup -ENOENT; a VM_BIND queue
    -EINVAL; num_batch_buffer != width -EINVAL; killed queue -ECANCELED; syncs;
    parallel batch addresses (-EFAULT); num_batch_buffer == 0 signals the syncs and
    returns; VM closed/banned -ECANCELED; LR ring full -EAGAIN; (not LR) validate
    the VM's BOs; push the job; ``xe_vm_reactivate_rebind``.
    """
    from .xe_vm import xe_vm_reactivate_rebind

    if args.extensions or args.pad[0] or args.pad[1] or args.pad[2] or args.reserved[0] or args.reserved[1]:
        return -errno.EINVAL
    q = xef.exec_queues.get(int(args.exec_queue_id))
    if q is None:
        return -errno.ENOENT
    if q.is_vm_bind:
        return -errno.EINVAL
    if args.num_batch_buffer and q.width != args.num_batch_buffer:
        return -errno.EINVAL
    if q.killed:
        return -errno.ECANCELED
    vm = q.vm
    err, syncs = xe_sync_entries_parse(xef, int(args.syncs), int(args.num_syncs), lr_mode=vm.in_lr_mode)
    if err:
        return err
    if q.width > 1:
        try:
            usercopy.copy_from_user(int(args.address), 8 * q.width)
        except usercopy.EFault:
            return -errno.EFAULT
    if not args.num_batch_buffer:
        return 0  # no job: nothing runs on the ring, so no user fence is written
    if vm.closed_or_banned:
        return -errno.ECANCELED
    if vm.in_lr_mode:
        if q.jobs >= LR_RING_JOBS:
            return -errno.EAGAIN
    else:
        for bo in vm.bound_bos():
            err = xe_bo_validate(bo, vm, allow_evict=True)
            if err:
                return err
    q.submitted += 1
    if vm.in_lr_mode:
        q.jobs += 1  # a long-running job never completes, so its user fences never signal
    else:
        xe_exec_user_fences_signal(vm, syncs)  # the fake's jobs complete at once
    xe_vm_reactivate_rebind(vm)
    return 0


# --- WAIT_USER_FENCE, OBSERVATION ----------------------------------------------------------
def _compare(value: int, expected: int, mask: int, op: int) -> bool:
    v, e = value & mask, expected & mask
    return [v == e, v != e, v > e, v >= e, v < e, v <= e][op]


def xe_wait_user_fence_ioctl(xef: XeFile, args: Any) -> int:
    """``xe_wait_user_fence_ioctl()``: runs without the device lock and polls the user word.

    -EINVAL for extensions/pad/reserved, unknown flags, op > LTE, addr not 8-aligned;
    -ENOENT for an unknown exec queue; -EFAULT for an unreadable word; -EIO when the
    queue gets killed; -ETIME when the timeout expires.  ``timeout`` < 0 waits
    forever; without ABSTIME the remaining time is written back.
    """
    xe = xef.device
    if args.extensions or args.pad or args.pad2 or args.reserved[0] or args.reserved[1]:
        return -errno.EINVAL
    if args.flags & ~DRM_XE_UFENCE_WAIT_FLAG_ABSTIME:
        return -errno.EINVAL
    if args.op > UFENCE_WAIT_MAX_OP:
        return -errno.EINVAL
    if args.addr & 0x7:
        return -errno.EINVAL
    q = None
    if args.exec_queue_id:
        with xe.lock:
            q = xef.exec_queues.get(int(args.exec_queue_id))
        if q is None:
            return -errno.ENOENT
    start = time.monotonic_ns()
    timeout = int(args.timeout)
    abstime = bool(args.flags & DRM_XE_UFENCE_WAIT_FLAG_ABSTIME)
    deadline = None if timeout < 0 else (timeout if abstime else start + timeout)
    err = 0
    while True:
        try:
            value = struct.unpack("<Q", usercopy.copy_from_user(int(args.addr), 8))[0]
        except usercopy.EFault:
            err = -errno.EFAULT
            break
        if _compare(value, int(args.value), int(args.mask), int(args.op)):
            break
        if q is not None and q.killed:
            err = -errno.EIO
            break
        now = time.monotonic_ns()
        if deadline is not None and now >= deadline:
            err = -errno.ETIME
            break
        time.sleep(0.001)
    if not abstime:
        args.timeout = max(0, timeout - (time.monotonic_ns() - start)) if timeout >= 0 else timeout
    return err


def xe_observation_ioctl(xef: XeFile, args: Any) -> int:
    """``xe_observation_ioctl()``: OA and EU-stall streams need hardware the fake lacks (-ENODEV)."""
    if args.extensions:
        return -errno.EINVAL
    if args.observation_type in (0, 1):
        return -errno.ENODEV
    return -errno.EINVAL
