"""Event streams the listener figures feed: a notification pipe and something that posts to it.

* fake: a :class:`~xeclient.watch.Watch` on the fake backend and a ``WatchSource``
  posting 24-byte VM_ERR records whose ``timestamp_ns`` is taken just before the
  post, as the kernel takes it when it posts.
* kernel: a real notification pipe and a real kernel source, a user key
  watched with ``KEYCTL_WATCH_KEY`` and updated with ``KEYCTL_UPDATE``: each
  update is one 16-byte KEY_NOTIFY record.  Those carry no timestamp, so the
  stream keeps the post times in order and the receiver matches them by arrival
  order (the figure checks that nothing was lost, which would misalign them).
  VM_ERR records cannot be made on demand on hardware: they need a real eviction.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import os
import time
from typing import Any

from ..backends import Backend
from ..uapi.constants import WatchType
from ..watch import TypeFilter, Watch
from ._common import DRM_XE_WATCH_EVENT_VM_ERR, WATCH_TYPE_DRM_XE_NOTIFY, vm_err_payload

#: The watch_id every bench stream uses (so a wrong ID-bit handling shows).
BENCH_WATCH_ID = 7


class StreamUnavailable(RuntimeError):
    """This backend cannot make the stream here; the message says why."""


class Stream:
    """A notification pipe plus a poster.  ``post(seq)`` stamps and posts one record."""

    kind = "?"
    #: True when records carry their own timestamp_ns (VM_ERR); else see :meth:`stamp_for`.
    stamped = True

    def __init__(self, backend: Backend, watch: Watch) -> None:
        self.backend = backend
        self.watch = watch
        self._stamps: collections.deque[int] = collections.deque()

    def post(self, seq: int) -> None:
        raise NotImplementedError

    def next_stamp(self) -> int | None:
        """For unstamped streams: the post time of the oldest record not yet matched."""
        try:
            return self._stamps.popleft()
        except IndexError:
            return None

    def close(self) -> None:
        self.watch.close()
        shutdown = getattr(self.backend, "shutdown", None)
        if shutdown is not None:
            shutdown()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeVmErrStream(Stream):
    """VM_ERR records posted through a fake ``WatchSource`` (the path the rebind worker's post takes)."""

    kind = "fake WatchSource, 24-byte VM_ERR records"

    def __init__(self, nr_notes: int) -> None:
        from ..backends.fake import FakeBackend

        backend = FakeBackend()
        try:
            watch = Watch(backend, nr_notes=nr_notes)
            self.source: Any = backend.watch_source(0)
            self.source.add_watch(watch.read_fd, BENCH_WATCH_ID)
        except BaseException:
            backend.shutdown()
            raise
        super().__init__(backend, watch)
        self._post = self.source.post

    def post(self, seq: int) -> None:
        self._post(WATCH_TYPE_DRM_XE_NOTIFY, DRM_XE_WATCH_EVENT_VM_ERR, vm_err_payload(seq, time.monotonic_ns()))


# --- the kernel stream: key notifications ------------------------------------------------------------
_SYS_ADD_KEY = 248  # x86_64
_SYS_KEYCTL = 250
KEY_SPEC_PROCESS_KEYRING = -2
KEYCTL_UPDATE = 2
KEYCTL_INVALIDATE = 21
KEYCTL_WATCH_KEY = 32


def _syscall() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.syscall
    fn.restype = ctypes.c_long
    return fn


class KernelKeyStream(Stream):
    """KEY_NOTIFY records from a real user key (needs CONFIG_WATCH_QUEUE and CONFIG_KEY_NOTIFICATIONS)."""

    kind = "kernel key notifications (KEYCTL_UPDATE), 16-byte records, matched in order"
    stamped = False

    def __init__(self, nr_notes: int) -> None:
        from ..backends.kernel import KernelBackend

        if os.uname().machine != "x86_64":
            raise StreamUnavailable(
                f"the key-notification stream knows x86_64 syscall numbers only, not {os.uname().machine}"
            )
        backend = KernelBackend()
        try:
            watch = Watch(backend, nr_notes=nr_notes, filters=[TypeFilter(WatchType.KEY_NOTIFY)])
        except OSError as exc:
            raise StreamUnavailable(f"no notification pipe on this kernel ({exc})") from None
        self._sys = _syscall()
        desc = f"xeclient-bench-{os.getpid()}-{time.monotonic_ns()}".encode()
        serial = self._sys(
            _SYS_ADD_KEY, b"user", desc, b"0", ctypes.c_size_t(1), ctypes.c_int(KEY_SPEC_PROCESS_KEYRING)
        )
        if serial < 0:
            err = ctypes.get_errno()
            watch.close()
            raise StreamUnavailable(f"add_key(user): {os.strerror(err)}")
        self.serial = int(serial)
        rc = self._sys(_SYS_KEYCTL, KEYCTL_WATCH_KEY, ctypes.c_long(self.serial), watch.read_fd, BENCH_WATCH_ID)
        if rc < 0:
            err = ctypes.get_errno()
            self._sys(_SYS_KEYCTL, KEYCTL_INVALIDATE, ctypes.c_long(self.serial))
            watch.close()
            why = "CONFIG_KEY_NOTIFICATIONS is off" if err in (errno.EOPNOTSUPP, errno.ENOSYS) else os.strerror(err)
            raise StreamUnavailable(f"KEYCTL_WATCH_KEY: {why}")
        super().__init__(backend, watch)

    def post(self, seq: int) -> None:
        self._stamps.append(time.monotonic_ns())
        if self._sys(_SYS_KEYCTL, KEYCTL_UPDATE, ctypes.c_long(self.serial), b"1", ctypes.c_size_t(1)) < 0:
            self._stamps.pop()
            raise OSError(ctypes.get_errno(), "KEYCTL_UPDATE")

    def close(self) -> None:
        self._sys(_SYS_KEYCTL, KEYCTL_INVALIDATE, ctypes.c_long(self.serial))
        super().close()


def open_stream(backend: str, nr_notes: int = 256) -> Stream:
    """The event stream for ``backend`` ("fake" or "kernel")."""
    if backend == "kernel":
        return KernelKeyStream(nr_notes)
    return FakeVmErrStream(nr_notes)
