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
"""

from __future__ import annotations

import errno
import os
import select
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._ioctl import annotate
from .backends import Backend
from .errors import IoctlError, XeError
from .uapi import ffi
from .uapi.constants import (
    O_NOTIFICATION_PIPE,
    WATCH_QUEUE_MAX_FILTERS,
    WATCH_QUEUE_MAX_NOTES,
    WatchType,
)
from .uapi.requests import DRM_IOCTL_XE_WATCH_QUEUE, IOC_WATCH_QUEUE_SET_FILTER, IOC_WATCH_QUEUE_SET_SIZE

if TYPE_CHECKING:
    from .device import Device
    from .events import Event


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
        flags = O_NOTIFICATION_PIPE | os.O_CLOEXEC | (os.O_NONBLOCK if nonblock else 0)
        self.read_fd, self.write_fd = backend.pipe2(flags)
        self._write_open = True
        try:
            self.set_size(self.nr_notes)
            self.set_filter(XE_FILTERS if filters == "xe" else filters)  # type: ignore[arg-type]
        except BaseException:
            self.close()
            raise

    # --- setup ------------------------------------------------------------------------
    def set_size(self, nr_notes: int) -> None:
        """IOC_WATCH_QUEUE_SET_SIZE: room for ``nr_notes`` unread records (1-512).

        The kernel rounds up to whole pages of 32 notes and allows it once per pipe.
        """
        if not 1 <= nr_notes <= WATCH_QUEUE_MAX_NOTES:
            raise XeError(errno.EINVAL, f"IOC_WATCH_QUEUE_SET_SIZE({nr_notes})", "the size must be 1-512 notes")
        self.backend.ioctl(self.read_fd, IOC_WATCH_QUEUE_SET_SIZE, nr_notes)
        self.nr_notes = nr_notes

    def set_filter(self, filters: Iterable[TypeFilter] | None) -> None:
        """IOC_WATCH_QUEUE_SET_FILTER; ``None`` removes the filter (accept everything)."""
        if filters is None:
            self.backend.ioctl(self.read_fd, IOC_WATCH_QUEUE_SET_FILTER, 0)
            return
        entries = list(filters)
        if not 1 <= len(entries) <= WATCH_QUEUE_MAX_FILTERS:
            raise XeError(errno.EINVAL, "IOC_WATCH_QUEUE_SET_FILTER", f"give 1-{WATCH_QUEUE_MAX_FILTERS} filters, or None")
        size = ffi.sizeof("struct watch_notification_filter") + len(entries) * ffi.sizeof("struct watch_notification_type_filter")
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
        self.backend.ioctl(self.read_fd, IOC_WATCH_QUEUE_SET_FILTER, ffi.buffer(raw, size))

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
        chunks = []
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
        from .events import parse_records

        data = self.drain()
        if not data and timeout > 0:
            poller = select.poll()
            poller.register(self.read_fd, select.POLLIN)
            if poller.poll(timeout * 1000):
                data = self.drain()
        return parse_records(data) if data else []

    # --- lifetime ----------------------------------------------------------------------
    def close_write_end(self) -> None:
        """Close the write end (as igt does): delivery continues; an empty pipe then reads EOF."""
        if self._write_open:
            self._write_open = False
            self.backend.close(self.write_fd)

    def close(self) -> None:
        """Close both ends; the kernel then detaches every watch (no record).  Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self.close_write_end()
        finally:
            self.backend.close(self.read_fd)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        subs = ", ".join(f"{d.path}#{wid}" for d, wid in self.subscriptions) or "no subscriptions"
        state = " closed" if self.closed else ""
        return f"<Watch fd={self.read_fd} {self.nr_notes} notes, {subs}{state}>"
