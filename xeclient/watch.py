"""``Watch``: a watch-queue notification pipe and its subscriptions.

A ``Watch`` is one ``pipe2(O_NOTIFICATION_PIPE)`` pipe, sized
(IOC_WATCH_QUEUE_SET_SIZE) and filtered (IOC_WATCH_QUEUE_SET_FILTER), that can
be subscribed to several DRM files with ``DRM_IOCTL_XE_WATCH_QUEUE``, each
with its own ``watch_id`` (0-255, carried in every record's info bits) so one
reader can tell the sources apart.

It is the selectable core the listener builds on: :meth:`fileno` for
select/poll/asyncio and :meth:`poll` to drain without blocking.  Draining
always reads until EAGAIN, because a pending LOSS record does not make the pipe
readable on a real kernel (spec 1.7): a reader that only reads on POLLIN would
see it late.

On top of that core: :meth:`Watch.events` (a blocking iterator) and
:meth:`Watch.aevents` (``async for``), and the hooks :class:`~xeclient.listener.Listener`
uses.  Closing a watch that another thread (or an event loop) is blocked on is
safe: :meth:`Watch.close` never closes a descriptor under a blocked ``poll()``
(closing has no effect on it, and the number could be reused); it wakes the
blocked readers through an eventfd and the last one to leave closes the
descriptors.  A watch also notices the end of its stream: once a REMOVAL has
arrived for every subscription it made (the DRM files were closed),
:attr:`Watch.removed` is true and the iterators end after that record.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._ioctl import annotate
from .backends import Backend
from .errors import IoctlError, XeError
from .events import Event, Removal
from .events import parse_records as _parse
from .uapi import ffi
from .uapi.constants import (
    O_NOTIFICATION_PIPE,
    WatchType,
)
from .uapi.requests import DRM_IOCTL_XE_WATCH_QUEUE, IOC_WATCH_QUEUE_SET_FILTER, IOC_WATCH_QUEUE_SET_SIZE

if TYPE_CHECKING:
    import asyncio

    from .device import Device
    from .listener import Listener

_POLL_IN = select.POLLIN
_POLL_BAD = select.POLLNVAL
#: Watches alive in this process, so a fork child can reset their locks (see _after_fork_in_child).
_LIVE: weakref.WeakSet[Watch] = weakref.WeakSet()


@dataclass(frozen=True)
class TypeFilter:
    """One ``watch_notification_type_filter``: records of ``type`` whose subtype is
    in ``subtypes`` (None: all of 0-31) and whose ``info & info_mask == info_filter``.

    ``info_mask=0xff00, info_filter=watch_id << 8`` selects one watch_id.  META
    records (loss, removal) always pass: the kernel never filters them.
    """

    type: int
    subtypes: frozenset[int] | None = None
    info_filter: int = 0
    info_mask: int = 0

    def subtype_words(self) -> list[int]:
        words = [0] * 8
        if self.subtypes is None:
            words[0] = 0xFFFFFFFF
        else:
            for s in self.subtypes:
                words[s // 32] |= 1 << (s % 32)
        return words


#: The default: only Xe device events (what igt's xe_watch listens to).
XE_FILTERS = (TypeFilter(WatchType.DRM_XE_NOTIFY),)


class Watch:
    """A notification pipe.  Context manager; ``close()`` closes both ends."""

    DEFAULT_NR_NOTES = 256
    #: Read size for a drain: many records per read(); any record is at most 127 bytes.
    READ_SIZE = 4096
    #: Read size of the blocking readers (iterators, listener): a full 512-note queue of
    #: 24-byte records in one read().
    BULK_READ_SIZE = 16384

    def __init__(
        self,
        backend: Backend,
        *,
        nr_notes: int | None = None,
        filters: Iterable[TypeFilter] | str | None = "xe",
        nonblock: bool = True,
    ) -> None:
        self.backend = backend
        self.nr_notes = nr_notes or self.DEFAULT_NR_NOTES
        self.subscriptions: list[tuple[Device, int]] = []
        self.closed = False
        #: True once a REMOVAL arrived for every subscription made with :meth:`subscribe`.
        self.removed = False
        self.nonblock = nonblock
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._blocked = 0  #: threads/loops inside poll()/read() on read_fd (see _hold)
        self._close_deferred = False
        self._wake_fd = -1  #: eventfd signalled by close() to wake blocked readers
        self._listener: Listener | None = None  #: the listener reading this watch, if any
        flags = O_NOTIFICATION_PIPE | os.O_CLOEXEC | (os.O_NONBLOCK if nonblock else 0)
        self.read_fd, self.write_fd = backend.pipe2(flags)
        self._write_open = True
        _LIVE.add(self)
        try:
            self.set_size(self.nr_notes)
            self.set_filter(XE_FILTERS if filters == "xe" else filters)  # type: ignore[arg-type]
        except BaseException:
            self.close()
            raise

    # --- setup ------------------------------------------------------------------------
    def set_size(self, nr_notes: int) -> None:
        """IOC_WATCH_QUEUE_SET_SIZE: room for ``nr_notes`` unread records (1-512).

        The kernel rounds up to whole pages of 32 notes and allows it once per pipe
        (EINVAL outside 1-512, EBUSY the second time); its answer is not second-guessed here.
        """
        try:
            self.backend.ioctl(self.read_fd, IOC_WATCH_QUEUE_SET_SIZE, nr_notes)
        except IoctlError as exc:
            raise annotate(exc, {"nr_notes": nr_notes}) from None
        self.nr_notes = nr_notes

    def set_filter(self, filters: Iterable[TypeFilter] | None) -> None:
        """IOC_WATCH_QUEUE_SET_FILTER; ``None`` removes the filter (accept everything)."""
        if filters is None:
            self.backend.ioctl(self.read_fd, IOC_WATCH_QUEUE_SET_FILTER, 0)
            return
        entries = list(filters)  # 1-16 entries; the kernel says EINVAL otherwise
        size = ffi.sizeof("struct watch_notification_filter") + len(entries) * ffi.sizeof(
            "struct watch_notification_type_filter"
        )
        raw = ffi.new("char[]", size)
        wf = ffi.cast("struct watch_notification_filter *", raw)
        wf.nr_filters = len(entries)
        for i, entry in enumerate(entries):
            slot = wf.filters[i]
            slot.type = entry.type
            slot.info_filter = entry.info_filter
            slot.info_mask = entry.info_mask
            for w, word in enumerate(entry.subtype_words()):
                slot.subtype_filter[w] = word
        try:
            self.backend.ioctl(self.read_fd, IOC_WATCH_QUEUE_SET_FILTER, ffi.buffer(raw, size))
        except IoctlError as exc:
            raise annotate(exc, {"nr_filters": len(entries)}) from None

    def subscribe(self, device: Device, watch_id: int = 0) -> None:
        """DRM_IOCTL_XE_WATCH_QUEUE: deliver ``device``'s events here, tagged ``watch_id``.

        One subscription per (DRM file, pipe): a second one is EBUSY whatever the id.
        """
        args = ffi.new("struct drm_xe_watch_queue *")
        args.fd = self.read_fd
        args.watch_id = watch_id
        try:
            device.series_ioctl(DRM_IOCTL_XE_WATCH_QUEUE, args, {"fd": self.read_fd, "watch_id": watch_id})
        except IoctlError as exc:
            raise annotate(exc, {"fd": self.read_fd, "watch_id": watch_id}) from None
        self.subscriptions.append((device, watch_id))
        self.removed = False

    # --- the selectable core ------------------------------------------------------------
    def fileno(self) -> int:
        return self.read_fd

    def read_raw(self, size: int | None = None) -> bytes | None:
        """One non-blocking read: whole records, ``b""`` at EOF, ``None`` when empty (EAGAIN)."""
        try:
            return self.backend.read(self.read_fd, size or self.READ_SIZE)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return None
            raise

    def drain(self) -> bytes:
        """Everything queued now, read until EAGAIN (or EOF)."""
        chunks: list[bytes] = []
        while True:
            data = self.read_raw()
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def poll(self, timeout: float = 0) -> list[Event]:
        """Drain and parse everything queued; wait up to ``timeout`` s if nothing is.

        Never blocks longer than ``timeout`` (0: not at all).  Returns the events
        in arrival order, LOSS and REMOVAL records included.
        """
        data = self.drain()
        if not data and timeout > 0:
            poller = select.poll()
            poller.register(self.read_fd, select.POLLIN)
            if poller.poll(timeout * 1000):
                data = self.drain()
        return self._take(data) if data else []

    def _take(self, data: bytes) -> list[Event]:
        """Parse records just read, and note REMOVALs of this watch's own subscriptions.

        A REMOVAL with id 0 (the xe form) ends the first subscription with its
        watch_id; when none is left, :attr:`removed` becomes true.  Every record
        is read exactly once, so every reader path goes through here.
        """
        events = _parse(data)
        if self.subscriptions:
            for ev in events:
                if ev.__class__ is Removal:
                    self._note_removal(ev)
        return events

    def _note_removal(self, ev: Removal) -> None:
        if ev.id != 0:
            return
        for i, (_, wid) in enumerate(self.subscriptions):
            if wid == ev.watch_id:
                del self.subscriptions[i]
                if not self.subscriptions:
                    self.removed = True
                return

    def _read_available(self, size: int | None = None) -> tuple[bytes, bool]:
        """Read until EAGAIN: ``(data, eof)``; eof is a read() of 0 (write end closed, queue empty)."""
        read_raw = self.read_raw
        size = size or self.BULK_READ_SIZE
        chunks: list[bytes] = []
        while True:
            data = read_raw(size)
            if data is None:
                break
            if not data:
                return b"".join(chunks), True
            chunks.append(data)
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), False

    # --- blocking readers ---------------------------------------------------------------
    def _hold(self) -> int:
        """Enter a section that uses ``read_fd`` (a read, a poll, an event-loop registration).

        Returns the wake-up eventfd to poll next to ``read_fd``; :meth:`close`
        signals it and defers closing the descriptors until the last holder
        calls :meth:`_release`.  Raises ValueError once closed.
        """
        with self._lock:
            if self.closed:
                raise ValueError(f"{self!r} is closed")
            if self._wake_fd < 0:
                self._wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self._blocked += 1
            return self._wake_fd

    def _release(self) -> None:
        with self._lock:
            self._blocked -= 1
            close_now = self._close_deferred and self._blocked == 0
            if close_now:
                self._close_deferred = False
        if close_now:
            self._close_fds()

    def _check_process(self, what: str) -> None:
        if os.getpid() != self._pid:
            raise RuntimeError(
                f"{what}: this Watch was created in process {self._pid} and inherited by fork(); "
                "reading it here would steal the parent's events. Create a new Watch in the child."
            )

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Yield events as they arrive, blocking in ``poll()`` between them.

        ``timeout``: the longest wait, in seconds, for each next event (None:
        forever); when it passes the iteration ends.  The iteration also ends
        when the watch is closed (from any thread: :meth:`close` wakes it), at
        EOF (the write end was closed and the queue is empty), and after the
        REMOVAL that ends the last subscription (:attr:`removed`).  Every wait
        is followed by a drain until EAGAIN, so a LOSS record (which does not
        make the pipe readable, spec 1.7) is seen at once.
        """
        self._check_process("Watch.events()")
        ms = -1 if timeout is None else max(0, round(timeout * 1000))
        poller: select.poll | None = None
        while True:
            try:
                wake = self._hold()
            except ValueError:
                return
            try:
                data, eof = self._read_available()
                if not data and not eof:
                    if self.removed:  # the stream ended before this iteration (e.g. seen by poll())
                        return
                    if poller is None:
                        poller = select.poll()
                        poller.register(self.read_fd, _POLL_IN)
                        poller.register(wake, _POLL_IN)
                    ready = poller.poll(ms)
                    if not ready or self.closed:
                        return
                    if any(fd == self.read_fd and rev & _POLL_BAD for fd, rev in ready):
                        raise XeError(
                            errno.EBADF,
                            f"poll(fd={self.read_fd})",
                            "the notification pipe was closed underneath the watch",
                        )
                    continue
            finally:
                self._release()
            if data:
                yield from self._take(data)
            if eof or self.removed:
                return

    def aevents(self, timeout: float | None = None) -> AsyncIterator[Event]:
        """``async for event in watch.aevents():`` -- the asyncio form of :meth:`events`.

        Waits with ``loop.add_reader`` on the running loop (looked up on each
        wait, never stored), registered only while waiting for the next event
        and removed on every exit -- wake-up, timeout, cancellation -- so a
        cancelled iteration leaves no reader behind and a new one can start at
        once.  :meth:`close` (from a task or another thread) ends the iteration.
        One waiting iterator per watch and loop at a time (``add_reader``
        replaces an earlier registration of the same descriptor).
        """
        self._check_process("Watch.aevents()")
        return _AsyncEvents(self, timeout)

    def _stale_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._blocked = 0
        self._close_deferred = False

    # --- lifetime ----------------------------------------------------------------------
    def close_write_end(self) -> None:
        """Close the write end (as igt does): delivery continues; an empty pipe then reads EOF."""
        if self._write_open:
            self._write_open = False
            self.backend.close(self.write_fd)

    def close(self) -> None:
        """Close both ends; the kernel then detaches every watch (no record).  Idempotent.

        If a reader is blocked on the pipe (:meth:`events`, :meth:`aevents`, a
        listener thread), it is woken and the descriptors are closed as soon as it
        has left its ``poll()``, never under it.
        """
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._blocked:
                self._close_deferred = True
                os.eventfd_write(self._wake_fd, 1)
                return
        self._close_fds()

    def _close_fds(self) -> None:
        try:
            self.close_write_end()
        finally:
            try:
                self.backend.close(self.read_fd)
            finally:
                if self._wake_fd >= 0:
                    os.close(self._wake_fd)
                    self._wake_fd = -1

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        subs = ", ".join(f"{d.path}#{wid}" for d, wid in self.subscriptions) or "no subscriptions"
        state = " closed" if self.closed else ""
        return f"<Watch fd={self.read_fd} {self.nr_notes} notes, {subs}{state}>"


class _AsyncEvents:
    """The async iterator :meth:`Watch.aevents` returns (a class, not an async generator, so
    nothing depends on the loop's async-generator finalizer to unregister the reader)."""

    def __init__(self, watch: Watch, timeout: float | None) -> None:
        self._watch = watch
        self._timeout = timeout
        self._buffer: deque[Event] = deque()
        self._done = False

    def __aiter__(self) -> _AsyncEvents:
        return self

    async def aclose(self) -> None:
        self._done = True
        self._buffer.clear()

    async def __anext__(self) -> Event:
        watch = self._watch
        while True:
            if self._buffer:
                return self._buffer.popleft()
            if self._done or watch.closed:
                self._done = True
                raise StopAsyncIteration
            try:
                watch._hold()
            except ValueError:
                continue  # closed meanwhile
            try:
                data, eof = watch._read_available()
            finally:
                watch._release()
            if data:
                self._buffer.extend(watch._take(data))
            if eof or watch.removed:
                self._done = True
            if not self._buffer and not self._done and not await self._wait():
                self._done = True

    async def _wait(self) -> bool:
        """Wait until the pipe is readable or the watch is closed; False on timeout."""
        import asyncio  # here, not at the top: `import xeclient` must stay cheap

        watch = self._watch
        loop = asyncio.get_running_loop()
        try:
            wake = watch._hold()
        except ValueError:
            return True  # closed: __anext__ ends
        fd = watch.read_fd
        future: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not future.done():  # a late callback must not touch a cancelled future (evdev #123)
                future.set_result(None)

        try:
            loop.add_reader(fd, ready)
            try:
                loop.add_reader(wake, ready)
                if self._timeout is None:
                    await future
                else:
                    await asyncio.wait_for(future, self._timeout)
                return True
            except asyncio.TimeoutError:
                return False
            finally:
                loop.remove_reader(wake)
                loop.remove_reader(fd)
        finally:
            watch._release()


def _after_fork_in_child() -> None:
    for watch in list(_LIVE):
        watch._stale_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
