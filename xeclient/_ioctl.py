"""The one place the typed layer turns an ffi struct into a seam ioctl.

Every wrapper passes its arguments as ``context`` so a failure reads
``DRM_IOCTL_XE_VM_RESTART(vm_id=3): [Errno 114] Operation already in progress``.
"""

from __future__ import annotations

from typing import Any

from .backends.base import Backend
from .errors import IoctlError, format_args
from .uapi import ffi


def struct_ioctl(backend: Backend, fd: int, request: int, cdata: Any, context: dict[str, object]) -> int:
    """Issue ``request`` with the struct ``cdata`` (a ``struct foo *``) as its buffer."""
    try:
        return backend.ioctl(fd, request, ffi.buffer(cdata))
    except IoctlError as exc:
        raise annotate(exc, context) from None


def annotate(
    exc: IoctlError, context: dict[str, object], cls: type[IoctlError] | None = None, hint: str | None = None
) -> IoctlError:
    """A copy of ``exc`` whose call names the arguments (and optionally a new class/hint)."""
    call = exc.call.split("(", 1)[0]
    if context:
        call = f"{call}({format_args(**context)})"
    return (cls or type(exc))(exc.errno or 0, call, hint or exc.hint, exc.request)
