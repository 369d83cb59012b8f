"""Errors: ``OSError`` subclasses that keep the kernel's errno and name the call.

Callers can always write ``except OSError as e: e.errno == errno.EALREADY``;
xeclient never remaps an errno to ValueError/MemoryError (pyudev's mistake) or
to a non-OSError type (pyroute2's).  The subclasses only add context:
which call failed, with which arguments, and for a few well-known situations
(no watch-queue support, a pre-series driver, no Xe device) what to do about it.
"""

from __future__ import annotations

import errno as _errno
import os


class XeError(OSError):
    """An OS-level failure of one call, e.g. ``DRM_IOCTL_XE_VM_RESTART(vm_id=3)``.

    ``str()`` reads ``DRM_IOCTL_XE_VM_RESTART(vm_id=3): [Errno 114] Operation
    already in progress``, optionally followed by a hint sentence.
    """

    def __init__(self, err: int, call: str, hint: str | None = None) -> None:
        super().__init__(err, os.strerror(err))
        self.call = call
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.call}: [Errno {self.errno}] {self.strerror}"
        return f"{text}. {self.hint}" if self.hint else text

    def __reduce__(self):  # type: ignore[no-untyped-def]  # keep pickling (multiprocessing, xdist) working
        return (type(self), (self.errno, self.call, self.hint))


class IoctlError(XeError):
    """An ioctl failed; ``request`` is the request code."""

    def __init__(self, err: int, call: str, hint: str | None = None, request: int = 0) -> None:
        super().__init__(err, call, hint)
        self.request = request

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.errno, self.call, self.hint, self.request))


class WatchQueueUnsupportedError(XeError):
    """``pipe2(O_NOTIFICATION_PIPE)`` gave ENOPKG: the kernel lacks CONFIG_WATCH_QUEUE."""

    def __init__(self, err: int = _errno.ENOPKG, call: str = "pipe2(O_NOTIFICATION_PIPE)", hint: str | None = None):
        super().__init__(
            err,
            call,
            hint
            or "This kernel lacks CONFIG_WATCH_QUEUE, so it has no notification pipes; "
            "use the fake backend (--backend fake) or a kernel built with CONFIG_WATCH_QUEUE=y",
        )


class SeriesMissingError(IoctlError):
    """The xe driver predates the VM-error/restart series: 0x10/0x11 answer EINVAL."""


class NoDeviceError(XeError):
    """No usable Xe render node (none found, or the node is another driver's)."""

    def __init__(self, message: str, err: int = _errno.ENODEV, call: str = "open") -> None:
        super().__init__(err, call, message)

    def __str__(self) -> str:
        return self.hint or super().__str__()


def format_args(**fields: object) -> str:
    """``vm_id=3, flags=0x12`` -- the argument list shown in error messages."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, int) and not isinstance(value, bool) and key in {"flags", "placement", "request"}:
            parts.append(f"{key}=0x{value:x}")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)
