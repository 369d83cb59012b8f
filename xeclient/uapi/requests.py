"""Every request code xeclient issues, computed with the ``_IOC`` mirror.

``REQUESTS`` maps each code to a :class:`Request` (its name, struct and
direction) so that errors can name the call (``DRM_IOCTL_XE_VM_RESTART``) and the
fake backend can dispatch on the same table.  Codes: spec sections 1.1, 2 and 3.
"""

from __future__ import annotations

from typing import NamedTuple

from ._ffi_abi import ffi
from .constants import DRM_COMMAND_BASE, DRM_IOCTL_BASE
from .ioc import IO, IOC_NR, IOW, IOWR, check_arch

check_arch()


class Request(NamedTuple):
    """One ioctl request: its code, its UAPI name and the struct it carries."""

    code: int
    name: str
    struct: str | None  #: "struct drm_xe_vm_create", or None for by-value/pointer args

    @property
    def nr(self) -> int:
        return IOC_NR(self.code)


def _sz(struct: str) -> int:
    return int(ffi.sizeof(struct))


# --- DRM core (drm.h) -------------------------------------------------------
DRM_IOCTL_VERSION = IOWR(DRM_IOCTL_BASE, 0x00, _sz("struct drm_version"))
DRM_IOCTL_GEM_CLOSE = IOW(DRM_IOCTL_BASE, 0x09, _sz("struct drm_gem_close"))

# --- Xe (xe_drm.h) ------------------------------------------------------------
_XE = (
    # name, nr, direction helper, struct
    ("DEVICE_QUERY", 0x00, IOWR, "struct drm_xe_device_query"),
    ("GEM_CREATE", 0x01, IOWR, "struct drm_xe_gem_create"),
    ("GEM_MMAP_OFFSET", 0x02, IOWR, "struct drm_xe_gem_mmap_offset"),
    ("VM_CREATE", 0x03, IOWR, "struct drm_xe_vm_create"),
    ("VM_DESTROY", 0x04, IOW, "struct drm_xe_vm_destroy"),
    ("VM_BIND", 0x05, IOW, "struct drm_xe_vm_bind"),
    ("EXEC_QUEUE_CREATE", 0x06, IOWR, "struct drm_xe_exec_queue_create"),
    ("EXEC_QUEUE_DESTROY", 0x07, IOW, "struct drm_xe_exec_queue_destroy"),
    ("EXEC_QUEUE_GET_PROPERTY", 0x08, IOWR, "struct drm_xe_exec_queue_get_property"),
    ("EXEC", 0x09, IOW, "struct drm_xe_exec"),
    ("WAIT_USER_FENCE", 0x0A, IOWR, "struct drm_xe_wait_user_fence"),
    ("OBSERVATION", 0x0B, IOW, "struct drm_xe_observation_param"),
    ("MADVISE", 0x0C, IOW, "struct drm_xe_madvise"),
    ("VM_QUERY_MEM_RANGE_ATTRS", 0x0D, IOWR, "struct drm_xe_vm_query_mem_range_attr"),
    ("EXEC_QUEUE_SET_PROPERTY", 0x0E, IOW, "struct drm_xe_exec_queue_set_property"),
    ("VM_GET_PROPERTY", 0x0F, IOWR, "struct drm_xe_vm_get_property"),
    ("VM_RESTART", 0x10, IOW, "struct drm_xe_vm_restart"),  # series, patch 1/4
    ("WATCH_QUEUE", 0x11, IOW, "struct drm_xe_watch_queue"),  # series, patch 4/4
)

XE_REQUESTS: dict[str, Request] = {
    name: Request(helper(DRM_IOCTL_BASE, DRM_COMMAND_BASE + nr, _sz(struct)), f"DRM_IOCTL_XE_{name}", struct)
    for name, nr, helper, struct in _XE
}

DRM_IOCTL_XE_DEVICE_QUERY = XE_REQUESTS["DEVICE_QUERY"].code
DRM_IOCTL_XE_GEM_CREATE = XE_REQUESTS["GEM_CREATE"].code
DRM_IOCTL_XE_GEM_MMAP_OFFSET = XE_REQUESTS["GEM_MMAP_OFFSET"].code
DRM_IOCTL_XE_VM_CREATE = XE_REQUESTS["VM_CREATE"].code
DRM_IOCTL_XE_VM_DESTROY = XE_REQUESTS["VM_DESTROY"].code
DRM_IOCTL_XE_VM_BIND = XE_REQUESTS["VM_BIND"].code
DRM_IOCTL_XE_EXEC_QUEUE_CREATE = XE_REQUESTS["EXEC_QUEUE_CREATE"].code
DRM_IOCTL_XE_EXEC_QUEUE_DESTROY = XE_REQUESTS["EXEC_QUEUE_DESTROY"].code
DRM_IOCTL_XE_EXEC_QUEUE_GET_PROPERTY = XE_REQUESTS["EXEC_QUEUE_GET_PROPERTY"].code
DRM_IOCTL_XE_EXEC = XE_REQUESTS["EXEC"].code
DRM_IOCTL_XE_WAIT_USER_FENCE = XE_REQUESTS["WAIT_USER_FENCE"].code
DRM_IOCTL_XE_OBSERVATION = XE_REQUESTS["OBSERVATION"].code
DRM_IOCTL_XE_MADVISE = XE_REQUESTS["MADVISE"].code
DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS = XE_REQUESTS["VM_QUERY_MEM_RANGE_ATTRS"].code
DRM_IOCTL_XE_EXEC_QUEUE_SET_PROPERTY = XE_REQUESTS["EXEC_QUEUE_SET_PROPERTY"].code
DRM_IOCTL_XE_VM_GET_PROPERTY = XE_REQUESTS["VM_GET_PROPERTY"].code
DRM_IOCTL_XE_VM_RESTART = XE_REQUESTS["VM_RESTART"].code
DRM_IOCTL_XE_WATCH_QUEUE = XE_REQUESTS["WATCH_QUEUE"].code

# --- notification pipes (watch_queue.h): _IO, not _IOW, for both ----------------
IOC_WATCH_QUEUE_SET_SIZE = IO("W", 0x60)  #: argument: number of notes, by value
IOC_WATCH_QUEUE_SET_FILTER = IO("W", 0x61)  #: argument: pointer to the filter, or 0
FIONREAD = 0x541B  #: <asm-generic/ioctls.h>; bytes of queued records on a notification pipe

REQUESTS: dict[int, Request] = {
    DRM_IOCTL_VERSION: Request(DRM_IOCTL_VERSION, "DRM_IOCTL_VERSION", "struct drm_version"),
    DRM_IOCTL_GEM_CLOSE: Request(DRM_IOCTL_GEM_CLOSE, "DRM_IOCTL_GEM_CLOSE", "struct drm_gem_close"),
    **{r.code: r for r in XE_REQUESTS.values()},
    IOC_WATCH_QUEUE_SET_SIZE: Request(IOC_WATCH_QUEUE_SET_SIZE, "IOC_WATCH_QUEUE_SET_SIZE", None),
    IOC_WATCH_QUEUE_SET_FILTER: Request(
        IOC_WATCH_QUEUE_SET_FILTER, "IOC_WATCH_QUEUE_SET_FILTER", "struct watch_notification_filter"
    ),
    FIONREAD: Request(FIONREAD, "FIONREAD", None),
}


def request_name(code: int) -> str:
    """The UAPI name of ``code``, or its hex form for a request xeclient does not know."""
    req = REQUESTS.get(code)
    return req.name if req else f"ioctl(0x{code:08x})"
