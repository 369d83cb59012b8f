"""File operations of the descriptors the fake backend owns.

Every descriptor the fake hands out is a real OS descriptor (a memfd for a DRM
file, the two ends of a real pipe for a notification pipe), so select/poll and
asyncio see real readiness.  What *happens* on ioctl/read/write is decided by
the :class:`FakeFile` registered for that descriptor, like a kernel's
``file_operations``.  Handlers follow kernel conventions: ``ioctl``/``read``/
``write`` return a negative errno on failure (``return -errno.EINVAL``), which
the backend turns into an ``OSError`` naming the call.
"""

from __future__ import annotations

from typing import Protocol

from ..base import IoctlArg


class FakeFile(Protocol):
    """One open file description of the fake kernel (``struct file_operations``)."""

    def ioctl(self, request: int, arg: IoctlArg) -> int:
        """``unlocked_ioctl``: 0 or a positive result, or ``-errno``."""
        ...

    def read(self, n: int) -> bytes | int:
        """``read``: the bytes read, or ``-errno``."""
        ...

    def write(self, data: bytes) -> int:
        """``write``: the count written, or ``-errno``."""
        ...

    def release(self) -> None:
        """The descriptor is being closed (the last reference, as nothing dups it)."""
        ...
