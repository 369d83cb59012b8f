"""The fake backend: the seam implemented by a Python model of the xe driver.

``FakeBackend`` owns a fresh, isolated fake kernel with one device.  It routes
each seam call by descriptor: descriptors it created (DRM files, notification
pipe ends) go to their :class:`~.vfs.FakeFile`; any other descriptor goes to the
OS, except that an ordinary pipe answers the watch-queue ioctls with ENODEV, as
a kernel built with CONFIG_WATCH_QUEUE does (spec 1.4/1.5; the series' Kconfig
selects WATCH_QUEUE, so every kernel carrying it has them).

Beyond the seam it offers a control surface for tests and the demo, which a
kernel does not: :meth:`inject`, :meth:`evict`, :meth:`settle`,
:meth:`watch_source` and :meth:`shutdown`.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import threading
from typing import Any

from ...errors import IoctlError, WatchQueueUnsupportedError, XeError
from ...uapi.constants import O_NOTIFICATION_PIPE
from ...uapi.requests import IOC_WATCH_QUEUE_SET_FILTER, IOC_WATCH_QUEUE_SET_SIZE, request_name
from ..base import IoctlArg
from .vfs import FakeFile

log = logging.getLogger("xeclient.backends.fake")

#: pipe2() flags the kernel accepts (spec 1.3); any other bit is EINVAL, checked first.
PIPE2_VALID_FLAGS = os.O_CLOEXEC | os.O_NONBLOCK | os.O_DIRECT | O_NOTIFICATION_PIPE

_STRERROR: dict[int, str] = {}


def _xe_error(err: int, call: str) -> XeError:
    """``XeError(err, call)``, its message taken from a per-errno cache.

    ``XeError()`` asks ``os.strerror``, which decodes the C library's message through the locale
    every time (a microsecond hot, several cold), and the EAGAIN read that ends every drain of a
    notification pipe raises one.  :func:`_fast_xe_error_matches` checks once that this builds
    exactly what the constructor builds; if ``XeError`` ever changes, the constructor is used.
    """
    if not _FAST_XE_ERROR:
        return XeError(err, call)
    message = _STRERROR.get(err)
    if message is None:
        message = _STRERROR[err] = os.strerror(err)
    exc = XeError.__new__(XeError, err, message)
    OSError.__init__(exc, err, message)
    exc.call = call
    exc.hint = None
    return exc


def _fast_xe_error_matches() -> bool:
    slow = XeError(errno.EAGAIN, "read(fd=0, 1)")
    fast = XeError.__new__(XeError, errno.EAGAIN, os.strerror(errno.EAGAIN))
    OSError.__init__(fast, errno.EAGAIN, os.strerror(errno.EAGAIN))
    fast.call = "read(fd=0, 1)"
    fast.hint = None
    return (
        type(fast) is type(slow)
        and fast.args == slow.args
        and fast.__dict__ == slow.__dict__
        and (fast.errno, fast.strerror, fast.filename, fast.filename2) == (slow.errno, slow.strerror, None, None)
        and str(fast) == str(slow)
    )


_FAST_XE_ERROR = _fast_xe_error_matches()


class FakeBackend:
    """A fresh fake kernel with one Xe device behind the seam.

    ``preset`` names a device model (see :mod:`.xe_device`); ``vram`` overrides
    its VRAM size in bytes.  Several backends may live in one process; they
    share nothing.
    """

    name = "fake"

    def __init__(self, preset: str | None = None, *, vram: int | None = None, **options: Any) -> None:
        from .xe_device import XeDevice

        self._files: dict[int, FakeFile] = {}
        self._files_lock = threading.Lock()
        self.device = XeDevice.create(self, preset=preset, vram=vram, **options)
        self._shut_down = False

    def __repr__(self) -> str:
        return f"<FakeBackend {self.device!r}>"

    def __enter__(self) -> FakeBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        # Leaving the block ends the whole fake kernel, pipes included.
        self.shutdown(close_pipes=True)

    # --- descriptor table ---------------------------------------------------------
    def install(self, fd: int, file: FakeFile) -> int:
        """Register ``file`` as the operations of the OS descriptor ``fd``."""
        with self._files_lock:
            self._files[fd] = file
        return fd

    def lookup(self, fd: int) -> FakeFile | None:
        """The fake file behind ``fd``, or None for a descriptor the fake does not own."""
        return self._files.get(fd)

    # --- the seam -------------------------------------------------------------------
    def render_nodes(self) -> list[str]:
        return [self.device.node_path]

    def open(self, path: str, flags: int) -> int:
        if path not in self.render_nodes():
            raise XeError(errno.ENOENT, f"open({path})", f"the fake device is {self.device.node_path}")
        fd = os.memfd_create(f"xe-fake:{os.path.basename(path)}", os.MFD_CLOEXEC if flags & os.O_CLOEXEC else 0)
        try:
            return self.install(fd, self.device.drm_open(fd))
        except BaseException:
            os.close(fd)
            raise

    def close(self, fd: int) -> None:
        with self._files_lock:
            file = self._files.pop(fd, None)
        try:
            if file is not None:
                file.release()
        finally:
            try:
                os.close(fd)
            except OSError as exc:
                raise XeError(exc.errno or errno.EIO, f"close({fd})") from None

    def ioctl(self, fd: int, request: int, arg: IoctlArg) -> int:
        file = self._files.get(fd)
        ret = self._ordinary_ioctl(fd, request, arg) if file is None else file.ioctl(request, arg)
        if ret < 0:
            raise IoctlError(-ret, request_name(request), request=request)
        return ret

    def pipe2(self, flags: int) -> tuple[int, int]:
        if flags & ~PIPE2_VALID_FLAGS:
            raise XeError(errno.EINVAL, f"pipe2(0x{flags:x})")
        if not flags & O_NOTIFICATION_PIPE:
            return os.pipe2(flags)
        from .watch_queue import create_notification_pipe

        try:
            return create_notification_pipe(self, flags)
        except WatchQueueUnsupportedError:
            raise
        except OSError as exc:
            raise XeError(exc.errno or errno.EIO, "pipe2(O_NOTIFICATION_PIPE)") from None

    def read(self, fd: int, n: int) -> bytes:
        file = self._files.get(fd)
        if file is None:
            try:
                return os.read(fd, n)
            except OSError as exc:
                raise XeError(exc.errno or errno.EIO, f"read(fd={fd}, {n})") from None
        ret = file.read(n)
        if isinstance(ret, int):
            raise _xe_error(-ret, f"read(fd={fd}, {n})")
        return ret

    def write(self, fd: int, data: bytes) -> int:
        file = self._files.get(fd)
        if file is None:
            try:
                return os.write(fd, data)
            except OSError as exc:
                raise XeError(exc.errno or errno.EIO, f"write(fd={fd}, {len(data)} bytes)") from None
        ret = file.write(bytes(data))
        if ret < 0:
            raise XeError(-ret, f"write(fd={fd}, {len(data)} bytes)")
        return ret

    def _ordinary_ioctl(self, fd: int, request: int, arg: IoctlArg) -> int:
        """An ioctl on a descriptor the fake does not own: the OS answers it.

        Exception: the watch-queue ioctls on an ordinary pipe are -ENODEV, as on a
        kernel with CONFIG_WATCH_QUEUE (this host may have none and say ENOTTY).
        """
        if request in (IOC_WATCH_QUEUE_SET_SIZE, IOC_WATCH_QUEUE_SET_FILTER):
            try:
                mode = os.fstat(fd).st_mode
            except OSError as exc:
                return -(exc.errno or errno.EBADF)
            return -errno.ENODEV if stat.S_ISFIFO(mode) else -errno.ENOTTY
        try:
            if isinstance(arg, int):
                return fcntl.ioctl(fd, request, arg)
            return int(fcntl.ioctl(fd, request, arg, True))  # type: ignore[call-overload]
        except OSError as exc:
            return -(exc.errno or errno.EIO)

    # --- control surface (not part of the seam) ---------------------------------------
    def inject(self, name: str, *, probability: int = 100, times: int = 1, interval: int = 1, space: int = 0) -> None:
        """Arm a fault attribute, as writing its debugfs files would (spec 6.5)."""
        self.device.faults.inject(name, probability=probability, times=times, interval=interval, space=space)

    def evict(self, fd: int, vm_id: int) -> None:
        """Evict as if TTM had evicted one of the VM's BOs (queues its rebind worker)."""
        self.device.evict(fd, vm_id)

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until every queued worker run has finished; False on timeout."""
        return bool(self.device.settle(timeout))

    def watch_source(self, id: int = 0) -> Any:
        """A generic notification source (like a key): add/remove watches, post records."""
        from .watch_queue import WatchSource

        return WatchSource(self, id)

    def shutdown(self, *, close_pipes: bool = False) -> None:
        """Stop the workers and close the DRM files this backend still has open.

        Notification pipes are left to whoever holds them, as in the kernel, where
        a pipe outlives the DRM files posting to it: closing each DRM file sends
        its watches their REMOVAL record, so a listener ends cleanly ("removed").
        Closing a pipe here instead would pull a descriptor from under a reader
        blocked on it -- the race a listener is built never to face.  A test
        harness that knows no thread reads them any more passes
        ``close_pipes=True`` to close the pipes too.
        """
        if self._shut_down:
            if close_pipes:
                self._close_remaining()
            return
        self._shut_down = True
        from .watch_queue import NotificationPipeEnd

        with self._files_lock:
            fds = [fd for fd, file in self._files.items() if not isinstance(file, NotificationPipeEnd)]
        for fd in fds:  # DRM files first: xe_file_destroy posts the REMOVAL records
            try:
                self.close(fd)
            except OSError:
                pass
        self.device.shutdown()
        if close_pipes:
            self._close_remaining()

    def _close_remaining(self) -> None:
        with self._files_lock:
            fds = list(self._files)
        for fd in fds:
            try:
                self.close(fd)
            except OSError:
                pass
