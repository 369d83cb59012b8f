"""copy_from_user / copy_to_user over this process's own memory.

The kernel reads user pointers embedded in ioctl structs (query ``data``,
``instances``, ``vector_of_binds``, filters) with copy_from_user, which fails
with -EFAULT instead of crashing on a bad address.  The fake gets the same
behaviour from ``process_vm_readv``/``process_vm_writev`` on its own pid: the
kernel validates the address for us and a bad one is EFAULT, never a segfault.
"""

from __future__ import annotations

import errno
import os
from functools import lru_cache
from typing import Any

from ...errors import XeError


class EFault(XeError):
    """A user pointer could not be read or written."""

    def __init__(self, call: str = "copy_from_user") -> None:
        super().__init__(errno.EFAULT, call)


@lru_cache(maxsize=1)
def _libc() -> tuple[Any, Any]:
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(
        """
        struct iovec { void *iov_base; size_t iov_len; };
        ssize_t process_vm_readv(int pid, const struct iovec *local, unsigned long liovcnt,
                                 const struct iovec *remote, unsigned long riovcnt, unsigned long flags);
        ssize_t process_vm_writev(int pid, const struct iovec *local, unsigned long liovcnt,
                                  const struct iovec *remote, unsigned long riovcnt, unsigned long flags);
        """
    )
    return ffi, ffi.dlopen(None)


def copy_from_user(address: int, size: int) -> bytes:
    """Read ``size`` bytes at user address ``address``; EFAULT if any byte is unmapped."""
    if size == 0:
        return b""
    if address == 0:
        raise EFault()
    ffi, libc = _libc()
    buf = ffi.new("char[]", size)
    local = ffi.new("struct iovec *", {"iov_base": buf, "iov_len": size})
    remote = ffi.new("struct iovec *", {"iov_base": ffi.cast("void *", address), "iov_len": size})
    got = libc.process_vm_readv(os.getpid(), local, 1, remote, 1, 0)
    if got != size:
        raise EFault()
    return bytes(ffi.buffer(buf, size))


def copy_to_user(address: int, data: bytes) -> None:
    """Write ``data`` at user address ``address``; EFAULT if any byte is unwritable."""
    if not data:
        return
    if address == 0:
        raise EFault("copy_to_user")
    ffi, libc = _libc()
    buf = ffi.from_buffer(data)
    local = ffi.new("struct iovec *", {"iov_base": buf, "iov_len": len(data)})
    remote = ffi.new("struct iovec *", {"iov_base": ffi.cast("void *", address), "iov_len": len(data)})
    got = libc.process_vm_writev(os.getpid(), local, 1, remote, 1, 0)
    if got != len(data):
        raise EFault("copy_to_user")
