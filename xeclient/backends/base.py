"""The syscall seam: the only calls anything above ``xeclient.backends`` may make.

Both backends implement exactly these seven calls on real OS file descriptors,
so select/poll/asyncio behave the same whether the driver behind a descriptor is
the kernel's or the fake's.  Failures raise ``OSError`` subclasses carrying the
kernel's errno and naming the call (:mod:`xeclient.errors`); EINTR is retried.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

#: A writable buffer: bytearray, writable memoryview, or ``ffi.buffer(cdata)``.
#: ``object`` because cffi buffers have no static type; backends check at run time.
IoctlArg = int | bytearray | memoryview | object


@runtime_checkable
class Backend(Protocol):
    """What a backend offers to the layers above it."""

    #: "kernel" or "fake"; for reports and logs, never for branching above the seam.
    name: str

    def render_nodes(self) -> list[str]:
        """Paths of render nodes driven by ``xe`` (``/dev/dri/renderD128`` ...)."""
        ...

    def open(self, path: str, flags: int) -> int:
        """Open a node and return a real OS descriptor."""
        ...

    def close(self, fd: int) -> None:
        """Close a descriptor this backend returned (or any OS descriptor)."""
        ...

    def ioctl(self, fd: int, request: int, arg: IoctlArg) -> int:
        """Issue ``request``; ``arg`` is an int passed by value or a writable buffer.

        Output fields are written back into the buffer as the kernel does, also
        when the call fails where the kernel copies back (IOWR requests).
        """
        ...

    def pipe2(self, flags: int) -> tuple[int, int]:
        """``pipe2(2)``; with ``O_NOTIFICATION_PIPE`` a watch-queue notification pipe."""
        ...

    def read(self, fd: int, n: int) -> bytes:
        """``read(2)`` of at most ``n`` bytes (whole records on a notification pipe)."""
        ...

    def write(self, fd: int, data: bytes) -> int:
        """``write(2)`` (EXDEV on a notification pipe)."""
        ...
