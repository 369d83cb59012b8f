"""``Vm``: a GPU address space (VM_CREATE/DESTROY/BIND, and the series' VM_RESTART).

``Vm.bindings`` records what this client has bound, keyed by GPU address, and
observers (the recovery layer's ``WorkingSet``) are told of every bind and
unbind, so a recovery policy knows what it can give back without asking the
kernel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ._ioctl import struct_ioctl
from .uapi import ffi
from .uapi.constants import BindOp, VmCreateFlag
from .uapi.requests import (
    DRM_IOCTL_XE_VM_BIND,
    DRM_IOCTL_XE_VM_CREATE,
    DRM_IOCTL_XE_VM_DESTROY,
    DRM_IOCTL_XE_VM_RESTART,
)

if TYPE_CHECKING:
    from .bo import Bo
    from .device import Device
    from .exec_queue import ExecQueue


class Binding:
    """One mapping this client made: ``range`` bytes of ``bo`` (or a userptr) at ``addr``."""

    __slots__ = ("addr", "bo", "bound_at", "offset", "range", "userptr")

    def __init__(self, addr: int, range: int, bo: Bo | None = None, offset: int = 0, userptr: int = 0) -> None:
        self.addr = addr
        self.range = range
        self.bo = bo
        self.offset = offset
        self.userptr = userptr
        self.bound_at = time.monotonic()

    def __repr__(self) -> str:
        what = f"bo={self.bo.handle}" if self.bo is not None else f"userptr=0x{self.userptr:x}"
        return f"<Binding 0x{self.addr:x}+0x{self.range:x} {what}>"

    @property
    def end(self) -> int:
        return self.addr + self.range


class BindObserver(Protocol):
    def on_bind(self, vm: Vm, binding: Binding) -> None: ...

    def on_unbind(self, vm: Vm, binding: Binding) -> None: ...


class Vm:
    """A VM of one DRM file.  ``restartable`` VMs are paused, not killed, on ENOMEM/ENOSPC."""

    def __init__(self, device: Device, vm_id: int, flags: int) -> None:
        self.device = device
        self.id = vm_id
        self.flags = VmCreateFlag(flags)
        self.bindings: dict[int, Binding] = {}
        self.exec_queues: dict[int, ExecQueue] = {}
        self.observers: list[BindObserver] = []
        self.destroyed = False

    @classmethod
    def create(cls, device: Device, flags: int = 0) -> Vm:
        args = ffi.new("struct drm_xe_vm_create *")
        args.flags = flags
        struct_ioctl(device.backend, device.fd, DRM_IOCTL_XE_VM_CREATE, args, {"flags": flags})
        # The kernel may OR in SCRATCH_PAGE (a hardware workaround, spec 5.1 row 2): keep what it says.
        vm = cls(device, int(args.vm_id), int(args.flags))
        device.vms[vm.id] = vm
        return vm

    # --- properties -----------------------------------------------------------------
    @property
    def restartable(self) -> bool:
        return bool(self.flags & VmCreateFlag.RESTARTABLE)

    @property
    def long_running(self) -> bool:
        return bool(self.flags & VmCreateFlag.LR_MODE)

    @property
    def preempt_fence_mode(self) -> bool:
        """LR without FAULT: the only mode with a rebind worker (spec 5.1)."""
        return self.long_running and not self.flags & VmCreateFlag.FAULT_MODE

    @property
    def bound_bytes(self) -> int:
        return sum(b.range for b in self.bindings.values())

    # --- binding --------------------------------------------------------------------
    def bind(
        self, bo: Bo, addr: int, *, offset: int = 0, range: int | None = None, flags: int = 0, pat_index: int = 0
    ) -> Binding:
        """Map ``range`` bytes of ``bo`` (default: all of it from ``offset``) at GPU ``addr``."""
        size = bo.size - offset if range is None else range
        self._bind_op(
            BindOp.MAP, obj=bo.handle, addr=addr, range=size, obj_offset=offset, flags=flags, pat_index=pat_index
        )
        return self._record(Binding(addr=addr, range=size, bo=bo, offset=offset))

    def bind_userptr(self, userptr: int, addr: int, range: int, *, flags: int = 0, pat_index: int = 0) -> Binding:
        """Map ``range`` bytes of process memory at ``userptr`` (page aligned) at ``addr``."""
        self._bind_op(
            BindOp.MAP_USERPTR, obj=0, addr=addr, range=range, obj_offset=userptr, flags=flags, pat_index=pat_index
        )
        return self._record(Binding(addr=addr, range=range, userptr=userptr))

    def unbind(self, target: Binding | int, range: int | None = None) -> None:
        """Unmap a binding (or ``range`` bytes at an address)."""
        if isinstance(target, Binding):
            addr, size = target.addr, target.range
        else:
            addr = target
            known = self.bindings.get(addr)
            if range is None and known is None:
                raise ValueError(f"no binding at 0x{addr:x} in {self!r}; pass range= to unmap an address range")
            size = range if range is not None else known.range  # type: ignore[union-attr]
        self._bind_op(BindOp.UNMAP, obj=0, addr=addr, range=size)
        self._forget(lambda b: b.addr >= addr and b.end <= addr + size)

    def unbind_all(self, bo: Bo) -> None:
        """Unmap every mapping of ``bo`` in this VM (VM_BIND_OP_UNMAP_ALL)."""
        self._bind_op(BindOp.UNMAP_ALL, obj=bo.handle, addr=0, range=0)
        self._forget(lambda b: b.bo is bo)

    def _bind_op(
        self, op: BindOp, *, obj: int, addr: int, range: int, obj_offset: int = 0, flags: int = 0, pat_index: int = 0
    ) -> None:
        args = ffi.new("struct drm_xe_vm_bind *")
        args.vm_id = self.id
        args.num_binds = 1
        args.bind.obj = obj
        args.bind.obj_offset = obj_offset
        args.bind.range = range
        args.bind.addr = addr
        args.bind.op = op
        args.bind.flags = flags
        args.bind.pat_index = pat_index
        context: dict[str, object] = {"vm_id": self.id, "op": op.name, "addr": hex(addr), "range": hex(range)}
        if obj:
            context["obj"] = obj
        struct_ioctl(self.device.backend, self.device.fd, DRM_IOCTL_XE_VM_BIND, args, context)

    def _record(self, binding: Binding) -> Binding:
        self.bindings[binding.addr] = binding
        for observer in list(self.observers):
            observer.on_bind(self, binding)
        return binding

    def _forget(self, match: Callable[[Binding], bool]) -> None:
        for binding in [b for b in self.bindings.values() if match(b)]:
            del self.bindings[binding.addr]
            for observer in list(self.observers):
                observer.on_unbind(self, binding)

    # --- the series -----------------------------------------------------------------
    def restart(self, timestamp_ns: int = 0) -> None:
        """DRM_IOCTL_XE_VM_RESTART: resume a VM its rebind worker paused on ENOMEM/ENOSPC.

        ``timestamp_ns`` (the VM_ERR record's) lets the kernel log the
        event-to-restart latency.  Raises ``IoctlError`` with EALREADY when the
        VM is not paused, EINVAL when it is not restartable, ENOENT when it was
        killed or destroyed.
        """
        args = ffi.new("struct drm_xe_vm_restart *")
        args.vm_id = self.id
        args.timestamp_ns = timestamp_ns
        self.device.series_ioctl(DRM_IOCTL_XE_VM_RESTART, args, {"vm_id": self.id})

    # --- lifetime -------------------------------------------------------------------
    def destroy(self) -> None:
        """VM_DESTROY (destroys this VM's exec queues first); idempotent."""
        if self.destroyed:
            return
        for queue in list(self.exec_queues.values()):
            queue.destroy()
        self.destroyed = True
        self.device.vms.pop(self.id, None)
        if self.device.closed:
            return
        args = ffi.new("struct drm_xe_vm_destroy *")
        args.vm_id = self.id
        struct_ioctl(self.device.backend, self.device.fd, DRM_IOCTL_XE_VM_DESTROY, args, {"vm_id": self.id})

    close = destroy

    def __enter__(self) -> Vm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __repr__(self) -> str:
        flags = "|".join(f.name or "" for f in VmCreateFlag if f & self.flags) or "0"
        state = " destroyed" if self.destroyed else f" {len(self.bindings)} bindings"
        return f"<Vm {self.id} {flags}{state}>"
