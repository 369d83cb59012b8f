"""``ExecQueue``: an exec queue on one engine of a VM (EXEC_QUEUE_CREATE/DESTROY, EXEC)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._ioctl import struct_ioctl
from .uapi import ffi
from .uapi.constants import EngineClass
from .uapi.requests import DRM_IOCTL_XE_EXEC, DRM_IOCTL_XE_EXEC_QUEUE_CREATE, DRM_IOCTL_XE_EXEC_QUEUE_DESTROY

if TYPE_CHECKING:
    from .vm import Vm


class ExecQueue:
    """A queue of jobs for one engine.  In a long-running (LR) VM a submitted job
    stays in flight until the queue is destroyed -- the compute workload the
    restart series is about."""

    def __init__(self, vm: Vm, queue_id: int, engine_class: EngineClass, engine_instance: int, gt_id: int) -> None:
        self.vm = vm
        self.device = vm.device
        self.id = queue_id
        self.engine_class = engine_class
        self.engine_instance = engine_instance
        self.gt_id = gt_id
        self.destroyed = False
        self.jobs_submitted = 0

    @classmethod
    def create(
        cls,
        vm: Vm,
        engine_class: int = EngineClass.COMPUTE,
        engine_instance: int = 0,
        *,
        gt_id: int = 0,
        flags: int = 0,
    ) -> ExecQueue:
        device = vm.device
        instance = ffi.new("struct drm_xe_engine_class_instance *")
        instance.engine_class = engine_class
        instance.engine_instance = engine_instance
        instance.gt_id = gt_id
        args = ffi.new("struct drm_xe_exec_queue_create *")
        args.width = 1
        args.num_placements = 1
        args.vm_id = vm.id
        args.flags = flags
        args.instances = int(ffi.cast("uintptr_t", instance))
        struct_ioctl(
            device.backend,
            device.fd,
            DRM_IOCTL_XE_EXEC_QUEUE_CREATE,
            args,
            {"vm_id": vm.id, "engine_class": EngineClass(engine_class).name, "engine_instance": engine_instance},
        )
        queue = cls(vm, int(args.exec_queue_id), EngineClass(engine_class), engine_instance, gt_id)
        vm.exec_queues[queue.id] = queue
        return queue

    def exec(self, address: int, num_batch_buffer: int = 1) -> None:
        """Submit the batch buffer at GPU ``address`` (DRM_IOCTL_XE_EXEC).

        On a paused VM the kernel also re-queues the rebind worker after the
        submission (``xe_vm_reactivate_rebind``), so an exec resumes the VM too.
        """
        args = ffi.new("struct drm_xe_exec *")
        args.exec_queue_id = self.id
        args.address = address
        args.num_batch_buffer = num_batch_buffer
        struct_ioctl(
            self.device.backend,
            self.device.fd,
            DRM_IOCTL_XE_EXEC,
            args,
            {"exec_queue_id": self.id, "address": hex(address)},
        )
        self.jobs_submitted += 1

    def destroy(self) -> None:
        """EXEC_QUEUE_DESTROY; idempotent.  Ends the queue's long-running job."""
        if self.destroyed:
            return
        self.destroyed = True
        self.vm.exec_queues.pop(self.id, None)
        if self.device.closed:
            return
        args = ffi.new("struct drm_xe_exec_queue_destroy *")
        args.exec_queue_id = self.id
        struct_ioctl(
            self.device.backend, self.device.fd, DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, args, {"exec_queue_id": self.id}
        )

    close = destroy

    def __enter__(self) -> ExecQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __repr__(self) -> str:
        state = " destroyed" if self.destroyed else ""
        return f"<ExecQueue {self.id} vm={self.vm.id} {self.engine_class.name}:{self.engine_instance}{state}>"
