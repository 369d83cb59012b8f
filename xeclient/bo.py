"""``Bo``: a GEM buffer object (DRM_IOCTL_XE_GEM_CREATE / DRM_IOCTL_GEM_CLOSE)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._ioctl import struct_ioctl
from .uapi import ffi
from .uapi.constants import CpuCaching, GemCreateFlag
from .uapi.requests import DRM_IOCTL_GEM_CLOSE, DRM_IOCTL_XE_GEM_CREATE

if TYPE_CHECKING:
    from .device import Device
    from .vm import Vm


class Bo:
    """A buffer object owned by one DRM file; ``close()`` drops its handle."""

    def __init__(self, device: Device, handle: int, size: int, placement: int, cpu_caching: int, flags: int) -> None:
        self.device = device
        self.handle = handle
        self.size = size
        self.placement = placement
        self.cpu_caching = CpuCaching(cpu_caching)
        self.flags = GemCreateFlag(flags)
        self.closed = False

    @classmethod
    def create(
        cls,
        device: Device,
        size: int,
        placement: int | str = "vram",
        *,
        cpu_caching: int | None = None,
        flags: int = 0,
        vm: Vm | None = None,
    ) -> Bo:
        """Create a BO; ``placement`` is a region-instance mask or "vram"/"sysmem"/"any".

        ``cpu_caching`` defaults to WC when any VRAM region is allowed (the kernel
        requires it for VRAM placements) and WB otherwise.
        """
        mask = device.placement_mask(placement)
        if cpu_caching is None:
            cpu_caching = CpuCaching.WC if mask & device.vram_mask() else CpuCaching.WB
        args = ffi.new("struct drm_xe_gem_create *")
        args.size = size
        args.placement = mask
        args.flags = flags
        args.vm_id = vm.id if vm is not None else 0
        args.cpu_caching = cpu_caching
        struct_ioctl(
            device.backend,
            device.fd,
            DRM_IOCTL_XE_GEM_CREATE,
            args,
            {"size": size, "placement": mask, "cpu_caching": int(cpu_caching), "flags": flags},
        )
        return cls(device, int(args.handle), size, mask, cpu_caching, flags)

    @property
    def in_vram(self) -> bool:
        return bool(self.placement & self.device.vram_mask())

    def close(self) -> None:
        """GEM_CLOSE the handle; idempotent, and a no-op once the device is closed."""
        if self.closed:
            return
        self.closed = True
        if self.device.closed:
            return
        args = ffi.new("struct drm_gem_close *")
        args.handle = self.handle
        struct_ioctl(self.device.backend, self.device.fd, DRM_IOCTL_GEM_CLOSE, args, {"handle": self.handle})

    def __enter__(self) -> Bo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "vram" if self.in_vram else "sysmem"
        state = " closed" if self.closed else ""
        return f"<Bo {self.handle} {self.size >> 10} KiB {where}{state}>"
