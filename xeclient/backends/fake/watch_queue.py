"""Notification pipes: the general notification queue (``kernel/watch_queue.c``).

Facts: spec section 1 (``§1.x`` below), including the live observations of
§1.11.  What the kernel keeps in ``struct watch_queue`` and in the pipe ring
lives here in Python: the number of notes (0 until SET_SIZE), the filter, the
ring of records (each with its PIPE_BUF_FLAG_LOSS bit), the pending-LOSS flag
of ``pipe_read`` and which ends are still open.

Readiness.  ``pipe2(O_NOTIFICATION_PIPE)`` returns the two ends of a **real**
OS pipe, so select/poll/asyncio see real readiness.  The model keeps exactly
one *token byte* in that real pipe while its ring is non-empty (and the read
end is open), and none otherwise:

* ring non-empty  -> token present -> POLLIN|POLLRDNORM (§1.7);
* ring empty, a LOSS pending -> no token -> nothing readable (§1.7, §1.11);
* write end closed -> the real pipe has no writer -> POLLHUP, together with
  POLLIN|POLLRDNORM while records are queued (§1.11).

The token is written through the user's write end while it is open; once it
has been closed, through a transient ``/proc/self/fd/<rfd>`` reopen for
writing (O_NONBLOCK), closed again at once, so the real pipe's writer count
keeps mirroring the model's.  It is drained when a read empties the ring.

Hot paths.  A post, a read and the EAGAIN read that ends every drain make as
few syscalls as the invariant allows: a post writes the token only when the
ring was empty, a read drains it only when it empties the ring, and the
descriptor's O_NONBLOCK (``F_GETFL``) is asked only when there is nothing to
return and read() must choose between -EAGAIN and blocking -- after the queue
lock is dropped.  No syscall releases the GIL while a queue lock is held: the
token goes through ``pwritev2``/``preadv2`` with RWF_NOWAIT called with the GIL
held (:class:`_TokenSyscalls`; ``os.write``/``poll`` + ``os.read`` where the
kernel or libc cannot), because a thread spinning in Python would otherwise
keep the GIL for a switch interval while the lock holder waits, and the reader
the token just woke would wait behind both.  The F_GETFL of an EAGAIN read
does release it, as the read(2) of a real pipe would: a listener's dispatcher
thread, woken by the records just read, gets the GIL there.  A ring slot is
the record's ``bytes``; the PIPE_BUF_FLAG_LOSS bits are kept aside as the ring
positions that carry one; a watch list is replaced, never changed in place, so
a poster walks a snapshot without its lock (the kernel's RCU walk).

Locking: one lock per queue, one per watch list; the order is queue then
list (as ``add_watch_to_object``), a poster snapshots the list and takes each
queue's lock in turn (the kernel walks the list under RCU).  No lock is held
while a blocking read waits on the real descriptor.

Not modelled (documented deviations): the pipe-page quota of SET_SIZE
(-EPERM, §1.4 step 4), allocation failures (-ENOMEM), the per-user watch
count (-EAGAIN, §1.9), the LSM hooks, SIGIO, and ``F_SETPIPE_SZ`` -> EBUSY /
``F_GETPIPE_SZ`` for page counts that are not a power of two (fcntl is not a
seam call and goes to the real pipe; SET_SIZE resizes the real pipe to
``nr_pages * 4096`` so 1, 2, 4, 8 and 16 pages read back as on the kernel).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import logging
import os
import select
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...errors import XeError
from ...uapi.constants import (
    O_NOTIFICATION_PIPE,
    WATCH_INFO_ID,
    WATCH_INFO_LENGTH,
    WATCH_QUEUE_MAX_FILTERS,
    WATCH_QUEUE_MAX_NOTES,
    WATCH_QUEUE_NOTES_PER_PAGE,
    WATCH_TYPE__NR,
    WatchMeta,
    WatchType,
)
from ...uapi.requests import FIONREAD, IOC_WATCH_QUEUE_SET_FILTER, IOC_WATCH_QUEUE_SET_SIZE
from ..base import IoctlArg
from .usercopy import EFault, copy_from_user, copy_to_user

if TYPE_CHECKING:
    from .backend import FakeBackend

__all__ = [
    "Watch",
    "WatchFilter",
    "WatchList",
    "WatchQueue",
    "WatchSource",
    "NotificationPipeEnd",
    "add_watch_to_object",
    "create_notification_pipe",
    "get_watch_queue",
    "post_one_notification",
    "post_watch_notification",
    "remove_watch_from_object",
    "watch_queue_clear",
    "watch_header",
]

log = logging.getLogger("xeclient.backends.fake.watch_queue")

PAGE_SIZE = 4096
_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1
_FILTER_HEADER = struct.Struct("<II")  # nr_filters, __reserved
_TYPE_FILTER = struct.Struct("<III8I")  # type, info_filter, info_mask, subtype_filter[8]: 44 bytes
_HEADER = struct.Struct("<II")  # (type | subtype << 24), info
#: The 8-byte LOSS record made up by read() (§1.2): type META, subtype LOSS, info 8, ID bits 0.
LOSS_RECORD = _HEADER.pack(WatchType.META | WatchMeta.LOSS_NOTIFICATION << 24, 8)
#: How long a blocked reader sleeps in poll() before re-checking that its end is still open.
_BLOCK_SLICE_MS = 500
_LOSS_SIZE = len(LOSS_RECORD)
_INFO_NOT_ID = ~WATCH_INFO_ID & _U32


def watch_header(type: int, subtype: int, info: int) -> bytes:
    """The 8-byte ``struct watch_notification``: ``type:24`` then ``subtype:8``, then ``info`` (§1.2)."""
    return _HEADER.pack((type & 0xFFFFFF) | (subtype & 0xFF) << 24, info & _U32)


def _roundup_pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


# --- filters (§1.5) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TypeFilter:
    """One kept ``watch_type_filter`` entry; only ``subtype_filter[0]`` is copied (§1.5)."""

    type: int
    info_filter: int
    info_mask: int
    subtype_filter0: int


@dataclass(frozen=True)
class WatchFilter:
    """``struct watch_filter``: the kept entries and the type bitmap built from them.

    The type bitmap and, per type, the entries' ``(subtype_filter0, info_mask, info_filter)``
    are built once (the kernel builds its bitmap at SET_FILTER time too), not per record.
    """

    filters: tuple[TypeFilter, ...]
    _types: frozenset[int] = field(init=False, repr=False, compare=False)
    _by_type: dict[int, tuple[tuple[int, int, int], ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_type: dict[int, list[tuple[int, int, int]]] = {}
        for f in self.filters:
            by_type.setdefault(f.type, []).append((f.subtype_filter0, f.info_mask, f.info_filter))
        object.__setattr__(self, "_types", frozenset(by_type))
        object.__setattr__(self, "_by_type", {t: tuple(entries) for t, entries in by_type.items()})

    @property
    def type_filter(self) -> frozenset[int]:
        return self._types

    def matches(self, type: int, subtype: int, info: int) -> bool:
        """``filter_watch_notification`` (§1.5): the type bit, then any entry of that type whose
        subtype bit is set and ``(info & info_mask) == info_filter``; otherwise rejected.

        Subtypes >= 32 make the kernel index past its one-word array (a quirk, §1.5); here they
        never match.
        """
        entries = self._by_type.get(type)
        if entries is None:
            return False
        if subtype >= 32:
            return False
        bit = 1 << subtype
        for subtype_filter0, info_mask, info_filter in entries:
            if subtype_filter0 & bit and (info & info_mask) == info_filter:
                return True
        return False


# --- the token's syscalls ------------------------------------------------------------------------
class _TokenSyscalls:
    """The token's write and read, through ``ctypes.PyDLL``: the GIL stays held across them.

    Both are made under a queue lock.  ``os.write``/``os.read`` release the GIL around the
    syscall, and a thread spinning in Python then keeps it for up to a switch interval before the
    caller gets it back -- with the queue lock held, so a reader woken by the token waits for the
    poster, then for the GIL again (a lock convoy: milliseconds at p99 under a busy main thread).
    These calls cannot block: ``pwritev2``/``preadv2`` with RWF_NOWAIT (pipes honour it since
    Linux 5.x), on their own 1-byte buffers.  :meth:`writer` and :meth:`reader` bind one
    descriptor: calling the result makes the syscall and returns the byte count, or -1.
    """

    def __init__(self, rwf_nowait: int) -> None:
        import ctypes

        class IoVec(ctypes.Structure):
            _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]

        libc = ctypes.PyDLL(None)  # PyDLL: called without releasing the GIL
        self._preadv2 = libc.preadv2
        self._pwritev2 = libc.pwritev2
        self._preadv2.restype = self._pwritev2.restype = ctypes.c_ssize_t
        # the buffers are only touched with the GIL held, so one pair serves every queue
        self._out = ctypes.create_string_buffer(b"\x01", 1)
        self._in = ctypes.create_string_buffer(1)
        self._out_iov = ctypes.pointer(IoVec(ctypes.cast(self._out, ctypes.c_void_p), 1))
        self._in_iov = ctypes.pointer(IoVec(ctypes.cast(self._in, ctypes.c_void_p), 1))
        self._here = ctypes.c_int64(-1)  # "the file position": a pipe has none
        self._nowait = ctypes.c_int(rwf_nowait)

    def writer(self, fd: int) -> Callable[[], int]:
        """``pwritev2(fd, token, RWF_NOWAIT)``, ready to call."""
        return functools.partial(self._pwritev2, fd, self._out_iov, 1, self._here, self._nowait)

    def reader(self, fd: int) -> Callable[[], int]:
        """``preadv2(fd, 1 byte, RWF_NOWAIT)``, ready to call."""
        return functools.partial(self._preadv2, fd, self._in_iov, 1, self._here, self._nowait)


_token_syscalls_probed = False
_token_syscalls_cached: _TokenSyscalls | None = None


def _token_syscalls() -> _TokenSyscalls | None:
    """The GIL-holding token syscalls if this libc and kernel do RWF_NOWAIT on a pipe (probed
    once, on a scratch pipe); None otherwise, and the token goes through ``os`` as before."""
    global _token_syscalls_probed, _token_syscalls_cached
    if _token_syscalls_probed:
        return _token_syscalls_cached
    calls: _TokenSyscalls | None = None
    rwf_nowait = getattr(os, "RWF_NOWAIT", None)
    if rwf_nowait is not None:
        try:
            calls = _TokenSyscalls(rwf_nowait)
            rfd, wfd = os.pipe2(os.O_CLOEXEC)  # blocking ends: RWF_NOWAIT alone must not wait
            try:
                read = calls.reader(rfd)  # an unsupported flag fails the first calls with -1 at once
                if not (calls.writer(wfd)() == 1 and read() == 1 and read() == -1):
                    calls = None
            finally:
                os.close(rfd)
                os.close(wfd)
        except (ImportError, AttributeError, OSError) as exc:
            log.debug("token syscalls through os: %s", exc)
            calls = None
    _token_syscalls_cached, _token_syscalls_probed = calls, True
    return calls


# --- the queue ----------------------------------------------------------------------------------
class WatchQueue:
    """``struct watch_queue`` plus the parts of ``struct pipe_inode_info`` a notification pipe uses."""

    def __init__(self, backend: FakeBackend, rfd: int, wfd: int) -> None:
        self.backend = backend
        self.rfd = rfd
        self.wfd = wfd
        self.lock = threading.Lock()
        self.nr_notes = 0  #: 0 until IOC_WATCH_QUEUE_SET_SIZE (§1.3)
        self.sized = False
        self.filter: WatchFilter | None = None  #: None: everything passes (§1.3)
        #: the unread records (whole records, PIPE_BUF_FLAG_WHOLE), oldest first
        self.ring: deque[bytes] = deque()
        #: PIPE_BUF_FLAG_LOSS: the ring positions (counted from the first record ever queued,
        #: ``_head_seq`` being ring[0]'s) whose slot carries the loss bit, ascending
        self._loss_seqs: deque[int] = deque()
        self._head_seq = 0
        self.note_loss = False  #: pipe->note_loss: a LOSS record is due at the top of the next read pass
        self.defunct = False  #: set by watch_queue_clear() when the last end closes
        self.watches: list[Watch] = []  #: wqueue->watches
        self.read_open = True
        self.write_open = True
        self._token = False  #: one byte sits in the real pipe (ring non-empty and read end open)
        calls = _token_syscalls()
        #: the GIL-holding token syscalls on this pipe's ends, or None: os.* calls
        self._token_write = calls.writer(wfd) if calls is not None else None
        self._token_read = calls.reader(rfd) if calls is not None else None

    def __repr__(self) -> str:
        state = "defunct" if self.defunct else f"notes={self.nr_notes} queued={len(self.ring)}"
        return f"<WatchQueue fds=({self.rfd},{self.wfd}) {state}>"

    @property
    def writers(self) -> int:
        """``pipe->writers``: open write-end files (the kernel poster is not one, §1.7)."""
        return 1 if self.write_open else 0

    # --- readiness token (caller holds self.lock) -------------------------------------------
    def _sync_token(self) -> None:
        """The rule; the post and read paths apply it inline, knowing which half can apply."""
        want = bool(self.ring) and self.read_open
        if want and not self._token:
            self._write_token()
        elif not want and self._token:
            self._drain_token()

    def _write_token(self) -> None:
        if self.write_open and self._token_write is not None and self._token_write() == 1:
            self._token = True
            return
        # the write end is closed, or the GIL-holding write could not (no such call, the pipe
        # full because someone wrote the real descriptor...): as the os calls decide
        try:
            if self.write_open:
                os.write(self.wfd, b"\x01")
            else:
                tmp = os.open(f"/proc/self/fd/{self.rfd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    os.write(tmp, b"\x01")
                finally:
                    os.close(tmp)
        except OSError as exc:  # should not happen; readiness is then merely late
            log.warning("notification pipe %d: cannot signal readiness: %s", self.rfd, exc)
            return
        self._token = True

    def _drain_token(self) -> None:
        self._token = False
        if not self.read_open:
            return
        if self._token_read is not None and self._token_read() >= 0:
            return  # read it (0: EOF, the pipe was empty and has no writer)
        # no GIL-holding read, or nothing to read (someone read the real descriptor): look first
        try:
            poller = select.poll()
            poller.register(self.rfd, select.POLLIN)
            if any(ev & select.POLLIN for _, ev in poller.poll(0)):
                os.read(self.rfd, 1)
        except OSError as exc:
            log.warning("notification pipe %d: cannot drain readiness: %s", self.rfd, exc)

    # --- ioctls (§1.4, §1.5, §1.8) -------------------------------------------------------------
    def set_size(self, arg: IoctlArg) -> int:
        """``watch_queue_set_size`` (§1.4): EBUSY if sized, EINVAL outside 1..512 (the argument is an
        unsigned long truncated to unsigned int, so 2**32+1 is 1), then ``ceil(n/32)*32`` notes.

        EPERM (pipe-page quota) and ENOMEM are not modelled.  A non-integer argument is a user
        pointer to the kernel, whose truncated value is not a note count: EINVAL here.
        """
        with self.lock:
            if self.sized:
                return -errno.EBUSY
            if not isinstance(arg, int):
                return -errno.EINVAL
            nr_notes = arg & _U32
            if nr_notes < 1 or nr_notes > WATCH_QUEUE_MAX_NOTES:
                return -errno.EINVAL
            nr_pages = -(-nr_notes // WATCH_QUEUE_NOTES_PER_PAGE)
            self.nr_notes = nr_pages * WATCH_QUEUE_NOTES_PER_PAGE
            self.sized = True
            # Anything posted before sizing was dropped, and its loss bit sat on a ring slot the
            # resize throws away: no LOSS ever appears for it (§1.4).
            self.note_loss = False
            self._resize_real_pipe(nr_pages * PAGE_SIZE)
            return 0

    def _resize_real_pipe(self, size: int) -> None:
        """Best effort: make F_GETPIPE_SZ read ``nr_pages * 4096`` like the kernel (§1.11)."""
        fd = self.rfd if self.read_open else self.wfd
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
        except OSError as exc:
            log.debug("F_SETPIPE_SZ(%d) on the real pipe: %s", size, exc)

    def set_filter(self, arg: IoctlArg) -> int:
        """``watch_queue_set_filter`` (§1.5), check for check.

        ``arg``: 0 removes the filter; another int is a user pointer (read with copy_from_user,
        EFAULT on a fault); a buffer is the filter itself (EFAULT if shorter than it claims).
        """
        if isinstance(arg, int) and arg == 0:
            with self.lock:
                self.filter = None
            return 0
        try:
            nr_filters, reserved = _FILTER_HEADER.unpack(_user_bytes(arg, 0, _FILTER_HEADER.size))
        except EFault:
            return -errno.EFAULT
        if nr_filters == 0 or nr_filters > WATCH_QUEUE_MAX_FILTERS or reserved != 0:
            return -errno.EINVAL
        try:
            raw = _user_bytes(arg, _FILTER_HEADER.size, nr_filters * _TYPE_FILTER.size)
        except EFault:
            return -errno.EFAULT
        entries = [_TYPE_FILTER.unpack_from(raw, i * _TYPE_FILTER.size) for i in range(nr_filters)]
        for entry in entries:  # every entry, also those of unknown type
            info_filter, info_mask = entry[1], entry[2]
            if info_filter & ~info_mask or info_mask & WATCH_INFO_LENGTH:
                return -errno.EINVAL
        kept = tuple(
            TypeFilter(type=e[0], info_filter=e[1], info_mask=e[2], subtype_filter0=e[3])
            for e in entries
            if e[0] < WATCH_TYPE__NR  # unknown types are dropped silently; none kept rejects all
        )
        with self.lock:
            self.filter = WatchFilter(kept)
        return 0

    def fionread(self, arg: IoctlArg) -> int:
        """FIONREAD (§1.8): total bytes of the queued records, a pending LOSS not included."""
        with self.lock:
            count = sum(map(len, self.ring))
        data = struct.pack("<i", count)
        try:
            _user_write(arg, data)
        except EFault:
            return -errno.EFAULT
        return 0

    # --- posting (§1.6) ---------------------------------------------------------------------------
    def post_one(self, record: bytes) -> bool:
        """``post_one_notification``: queue one record, or lose it and flag the newest record.

        Capacity is ``nr_notes`` unread records (0 before SET_SIZE: everything is lost, and the
        loss bit lands on an empty slot, i.e. nowhere).  Bypasses the filter (REMOVAL uses it).
        """
        with self.lock:
            return self._post_locked(record)

    def _post_locked(self, record: bytes) -> bool:
        if self.defunct:
            return False
        ring = self.ring
        queued = len(ring)
        if queued >= self.nr_notes:
            if queued:  # the newest record carries the loss bit (merged with any earlier loss)
                tail = self._head_seq + queued - 1
                loss_seqs = self._loss_seqs
                if not loss_seqs or loss_seqs[-1] != tail:
                    loss_seqs.append(tail)
            return False
        ring.append(record)
        if self.read_open and not self._token:  # _sync_token(): the ring is non-empty now
            self._write_token()
        return True

    def _clear_ring(self) -> None:
        """Drop every queued record and its loss bit (caller holds self.lock)."""
        self._head_seq += len(self.ring)
        self.ring.clear()
        self._loss_seqs.clear()

    # --- read (§1.7) ----------------------------------------------------------------------------------
    def _read_locked(self, count: int) -> bytes | int | None:
        """One pass of ``pipe_read`` under the lock: whole records (LOSS first when due), b"" at
        EOF, -ENOBUFS, or None: nothing to return while a writer is open -- read() then answers
        -EAGAIN or blocks, by the descriptor's O_NONBLOCK."""
        ring = self.ring
        out: list[bytes] = []
        room = count
        ret: bytes | int | None
        while True:
            if self.note_loss:
                if room < _LOSS_SIZE:
                    ret = b"".join(out) if out else -errno.ENOBUFS
                    break
                out.append(LOSS_RECORD)
                room -= _LOSS_SIZE
                self.note_loss = False
            if ring:
                head = ring[0]
                size = len(head)
                if size > room:  # PIPE_BUF_FLAG_WHOLE: never split
                    ret = b"".join(out) if out else -errno.ENOBUFS
                    break
                out.append(head)
                room -= size
                ring.popleft()
                seq = self._head_seq
                self._head_seq = seq + 1
                loss_seqs = self._loss_seqs
                if loss_seqs and loss_seqs[0] == seq:
                    loss_seqs.popleft()
                    self.note_loss = True  # emitted at the top of the *next* pass
                if room == 0:
                    ret = b"".join(out)
                    break
                if ring:
                    continue
            ret = b"".join(out) if out or not self.write_open else None  # b"": EOF
            break
        # _sync_token(), read_open being true here
        if ring:
            if not self._token:
                self._write_token()
        elif self._token:
            self._drain_token()
        return ret


# --- watches and watch lists (§1.9) ----------------------------------------------------------------
@dataclass(eq=False)
class Watch:
    """``struct watch``: ``id`` is the object's id (xe: 0; a key: its serial), ``info_id`` = watch_id << 8."""

    queue: WatchQueue
    id: int = 0
    info_id: int = 0
    watch_list: WatchList | None = None

    @classmethod
    def create(cls, queue: WatchQueue, id: int, watch_id: int) -> Watch:
        """``init_watch`` plus the caller's ``watch->id`` / ``watch->info_id`` assignments."""
        return cls(queue=queue, id=id, info_id=(watch_id & 0xFF) << 8)


@dataclass(eq=False)
class WatchList:
    """``struct watch_list``: the watches on one object (an xe_file, a key...), newest first.

    ``watchers`` is replaced under ``lock``, never changed in place: a poster walks the list it
    read without taking the lock, as the kernel walks it under RCU.
    """

    watchers: list[Watch] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __len__(self) -> int:
        with self.lock:
            return len(self.watchers)

    def __iter__(self) -> Iterator[Watch]:
        return iter(self.watchers)


def add_watch_to_object(watch: Watch, wlist: WatchList) -> int:
    """``add_watch_to_object`` (§1.9): -ENOENT if the queue is defunct, -EBUSY if a watch with the
    same (queue, id) is already on ``wlist``; 0 otherwise.  -EAGAIN (per-user watch count above
    RLIMIT_NOFILE) is not modelled."""
    wqueue = watch.queue
    with wqueue.lock:  # lock_wqueue
        if wqueue.defunct:
            return -errno.ENOENT
        with wlist.lock:
            for w in wlist.watchers:
                if w.queue is wqueue and w.id == watch.id:
                    return -errno.EBUSY
            watch.watch_list = wlist
            wqueue.watches.insert(0, watch)
            wlist.watchers = [watch, *wlist.watchers]  # hlist_add_head_rcu
    return 0


def remove_watch_from_object(wlist: WatchList, wqueue: WatchQueue | None, id: int, all: bool) -> int:
    """``remove_watch_from_object`` (§1.9): detach the watch with (``id``, ``wqueue``) -- or, with
    ``all``, every watch -- and send each one REMOVAL record: 8 bytes when ``id`` == 0, 16 with
    ``id`` (u64) otherwise; info = watch_id << 8 | length.  REMOVAL bypasses the filter (§1.5) but
    not the capacity.  -EBADSLT when nothing was found (also with ``all`` on an empty list)."""
    ret = -errno.EBADSLT
    while True:
        with wlist.lock:
            found = next((w for w in wlist.watchers if all or (w.id == id and w.queue is wqueue)), None)
            if found is None:
                return ret
            wlist.watchers = [w for w in wlist.watchers if w is not found]
            found.watch_list = None
        ret = 0
        if id != 0:
            record = watch_header(WatchType.META, WatchMeta.REMOVAL_NOTIFICATION, found.info_id | 16)
            record += struct.pack("<Q", id & _U64)
        else:
            record = watch_header(WatchType.META, WatchMeta.REMOVAL_NOTIFICATION, found.info_id | 8)
        q = found.queue
        with q.lock:
            if not q.defunct:
                q._post_locked(record)
                if found in q.watches:
                    q.watches.remove(found)
        if not all:
            return ret


def watch_queue_clear(wqueue: WatchQueue) -> None:
    """``watch_queue_clear`` (§1.9): the last end of the pipe closed; the queue becomes defunct and
    every watch is detached from its object, with no record."""
    with wqueue.lock:
        wqueue.defunct = True
        watches, wqueue.watches = wqueue.watches, []
        wqueue._clear_ring()
    for watch in watches:
        wlist = watch.watch_list
        if wlist is None:
            continue
        with wlist.lock:
            if watch in wlist.watchers:
                wlist.watchers = [w for w in wlist.watchers if w is not watch]
            watch.watch_list = None


def post_one_notification(wqueue: WatchQueue, record: bytes) -> bool:
    """Queue ``record`` on one queue, bypassing the filter (see :meth:`WatchQueue.post_one`)."""
    return wqueue.post_one(record)


def post_watch_notification(wlist: WatchList, record: bytes, id: int) -> None:
    """``__post_watch_notification`` (§1.6).

    ``record`` starts with a ``struct watch_notification``; ``info & 0x7f`` bytes of it are posted
    (a length of 0 is dropped, the kernel's WARN).  For each watch whose ``id`` matches, the
    record's ID bits become that watch's ``info_id``, that queue's filter is applied, and the
    record is queued (or lost, see :meth:`WatchQueue.post_one`).
    """
    if len(record) < _HEADER.size:
        raise ValueError(f"a record starts with an 8-byte header, got {len(record)} bytes")
    type_subtype, info = _HEADER.unpack_from(record)
    length = info & WATCH_INFO_LENGTH
    if length == 0:
        log.warning("post_watch_notification: record of length 0 dropped (the kernel WARNs)")
        return
    if length > len(record):
        raise ValueError(f"the header says {length} bytes, the record has {len(record)}")
    _post_to_watches(wlist, type_subtype, info, record[_HEADER.size : length], id)


def _post_to_watches(wlist: WatchList, type_subtype: int, info: int, body: bytes, id: int) -> None:
    """The walk of ``__post_watch_notification``: each watch with ``id`` gets the record with its
    ``info_id`` in the ID bits, if its queue's filter lets it through."""
    rtype, subtype = type_subtype & 0xFFFFFF, type_subtype >> 24
    base = info & _INFO_NOT_ID
    for watch in wlist.watchers:  # a snapshot: the list is replaced, never changed in place
        if watch.id != id:
            continue
        winfo = base | watch.info_id
        q = watch.queue
        with q.lock:
            wf = q.filter
            if wf is not None and not wf.matches(rtype, subtype, winfo):
                continue
            q._post_locked(_HEADER.pack(type_subtype, winfo) + body)


# --- the two ends ---------------------------------------------------------------------------------------
class NotificationPipeEnd:
    """The ``FakeFile`` of one end of a notification pipe (``pipefifo_fops`` with a watch queue)."""

    def __init__(self, queue: WatchQueue, fd: int, readable: bool) -> None:
        self.queue = queue
        self.fd = fd
        self.readable = readable

    def __repr__(self) -> str:
        return f"<NotificationPipeEnd fd={self.fd} {'read' if self.readable else 'write'} {self.queue!r}>"

    def ioctl(self, request: int, arg: IoctlArg) -> int:
        """``pipe_ioctl`` (either end): FIONREAD, SET_SIZE, SET_FILTER; anything else goes to the
        real pipe, i.e. the VFS's generic ioctls (FIONBIO, FIOCLEX...) work and the rest is ENOTTY."""
        if request == IOC_WATCH_QUEUE_SET_SIZE:
            return self.queue.set_size(arg)
        if request == IOC_WATCH_QUEUE_SET_FILTER:
            return self.queue.set_filter(arg)
        if request == FIONREAD:
            return self.queue.fionread(arg)
        try:
            if isinstance(arg, int):
                return fcntl.ioctl(self.fd, request, arg)
            return fcntl.ioctl(self.fd, request, arg, True)  # type: ignore[call-overload, no-any-return]
        except OverflowError:
            return -errno.ENOTTY
        except OSError as exc:
            return -(exc.errno or errno.ENOTTY)

    def read(self, n: int) -> bytes | int:
        """``pipe_read`` on a notification pipe (§1.7); -EBADF on the write end (VFS mode check)."""
        if not self.readable:
            return -errno.EBADF
        if n < 0:
            return -errno.EINVAL
        if n == 0:
            return b""
        q = self.queue
        while True:
            with q.lock:
                if not q.read_open:
                    return -errno.EBADF
                ret = q._read_locked(n)
            if ret is not None:
                return ret
            # Nothing to read: -EAGAIN or block, as O_NONBLOCK says.  Asked only now, and without
            # the queue lock: F_GETFL releases the GIL, as the read(2) of a real pipe would here.
            try:
                nonblock = fcntl.fcntl(self.fd, fcntl.F_GETFL) & os.O_NONBLOCK
            except OSError as exc:
                return -(exc.errno or errno.EBADF)
            if nonblock:
                return -errno.EAGAIN
            self._wait_readable()

    def _wait_readable(self) -> None:
        """Block, holding no lock, until the real pipe has the token or no writer (POLLIN/POLLHUP)."""
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while self.queue.read_open:
            try:
                if poller.poll(_BLOCK_SLICE_MS):
                    return
            except OSError:
                return

    def write(self, data: bytes) -> int:
        """``pipe_write``: -EXDEV on a notification pipe, before the zero-length shortcut (§1.8);
        -EBADF on the read end (VFS mode check)."""
        if self.readable:
            return -errno.EBADF
        return -errno.EXDEV

    def release(self) -> None:
        """``pipe_release``: when the last end closes, ``watch_queue_clear`` (§1.9)."""
        q = self.queue
        with q.lock:
            if self.readable:
                q.read_open = False
                q._token = False  # the token dies with the real read end
            else:
                q.write_open = False
            last = not q.read_open and not q.write_open
        if last:
            watch_queue_clear(q)


def create_notification_pipe(backend: FakeBackend, flags: int) -> tuple[int, int]:
    """``pipe2(O_NOTIFICATION_PIPE | flags)`` after the backend's flag check (§1.3).

    A real pipe with the other flags (O_CLOEXEC, O_NONBLOCK, O_DIRECT), fd[0] read-only and fd[1]
    write-only, both registered with the backend on one fresh queue: no notes, no filter.
    """
    rfd, wfd = os.pipe2(flags & ~O_NOTIFICATION_PIPE)
    try:
        queue = WatchQueue(backend, rfd, wfd)
        backend.install(rfd, NotificationPipeEnd(queue, rfd, readable=True))
        backend.install(wfd, NotificationPipeEnd(queue, wfd, readable=False))
    except BaseException:
        os.close(rfd)
        os.close(wfd)
        raise
    return rfd, wfd


def get_watch_queue(backend: FakeBackend, fd: int) -> WatchQueue | int:
    """``get_watch_queue`` (§1.10, §6.3): the queue behind either end of a notification pipe, or
    -EINVAL for a descriptor that is not open, not a pipe, or an ordinary pipe."""
    file = backend.lookup(fd) if isinstance(fd, int) else None
    if not isinstance(file, NotificationPipeEnd):
        return -errno.EINVAL
    return file.queue


# --- a generic notification source (like a key) -----------------------------------------------------------
class WatchSource:
    """A notification source for tests and demos, mirroring what keyrings offer a real kernel (§1.10).

    ``id`` plays the key serial: it is every watch's ``watch->id`` and the id carried by a 16-byte
    REMOVAL (an 8-byte one when ``id`` == 0, like xe).  Failures raise :class:`XeError` with the
    kernel's errno.
    """

    def __init__(self, backend: FakeBackend, id: int = 0) -> None:
        self.backend = backend
        self.id = id
        self.watch_list = WatchList()
        self.destroyed = False

    def __repr__(self) -> str:
        return f"<WatchSource id={self.id} watches={len(self.watch_list)}{' destroyed' if self.destroyed else ''}>"

    def _fail(self, err: int, call: str) -> XeError:
        return XeError(err, f"WatchSource({self.id}).{call}")

    def add_watch(self, pipe_fd: int, watch_id: int) -> None:
        """Watch this source through the notification pipe ``pipe_fd`` (either end), records
        carrying ``watch_id`` (0-255) in their ID bits (``keyctl_watch_key`` order: EINVAL for a
        watch_id out of range, ENOKEY once destroyed, EINVAL for a bad fd / non-pipe / ordinary
        pipe, ENOENT for a defunct queue, EBUSY if this source is already watched on that queue,
        whatever the watch_id)."""
        call = f"add_watch(fd={pipe_fd}, watch_id={watch_id})"
        if not 0 <= watch_id <= 0xFF:
            raise self._fail(errno.EINVAL, call)
        if self.destroyed:
            raise self._fail(errno.ENOKEY, call)
        wqueue = get_watch_queue(self.backend, pipe_fd)
        if isinstance(wqueue, int):
            raise self._fail(-wqueue, call)
        ret = add_watch_to_object(Watch.create(wqueue, self.id, watch_id), self.watch_list)
        if ret < 0:
            raise self._fail(-ret, call)

    def remove_watch(self, pipe_fd: int) -> None:
        """Remove this source's watch on ``pipe_fd``'s queue (``keyctl_watch_key`` with watch_id -1):
        EINVAL for a bad fd, EBADSLT if not watched; otherwise a synchronous REMOVAL."""
        call = f"remove_watch(fd={pipe_fd})"
        if self.destroyed:
            raise self._fail(errno.ENOKEY, call)
        wqueue = get_watch_queue(self.backend, pipe_fd)
        if isinstance(wqueue, int):
            raise self._fail(-wqueue, call)
        ret = remove_watch_from_object(self.watch_list, wqueue, self.id, False)
        if ret < 0:
            raise self._fail(-ret, call)

    def post(self, type: int, subtype: int, payload: bytes = b"", *, info_flags: int = 0) -> None:
        """Post one record: header (``type``, ``subtype``, info = ``info_flags`` | length) + payload.

        ``info_flags`` sets WATCH_INFO_TYPE_INFO bits (0x00010000...); the length is 8 + len(payload)
        and must stay within 127 bytes.  A destroyed source posts nothing.
        """
        length = _HEADER.size + len(payload)
        if length > WATCH_INFO_LENGTH:
            raise ValueError(f"record of {length} bytes: at most {WATCH_INFO_LENGTH}")
        if not 0 <= type <= 0xFFFFFF or not 0 <= subtype <= 0xFF:
            raise ValueError(f"type {type} / subtype {subtype} out of range (24 / 8 bits)")
        if info_flags & ~0xFFFF0000:
            raise ValueError(f"info_flags 0x{info_flags:x}: only WATCH_INFO_TYPE_INFO bits (0xffff0000)")
        if self.destroyed:
            return
        # post_watch_notification() of header + payload, without building and re-parsing it
        _post_to_watches(self.watch_list, type | subtype << 24, info_flags | length, bytes(payload), self.id)

    def destroy(self) -> None:
        """The source goes away (a key garbage-collected): every watch gets a REMOVAL."""
        if self.destroyed:
            return
        self.destroyed = True
        remove_watch_from_object(self.watch_list, None, self.id, True)


# --- user memory helpers ---------------------------------------------------------------------------------------
def _user_bytes(arg: IoctlArg, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of a user argument: an int pointer or a buffer; EFault otherwise."""
    if isinstance(arg, int):
        return copy_from_user((arg + offset) & _U64, size)
    try:
        view = memoryview(arg).cast("B")  # type: ignore[arg-type]
    except TypeError:
        raise EFault() from None
    if offset + size > len(view):
        raise EFault()
    return bytes(view[offset : offset + size])


def _user_write(arg: IoctlArg, data: bytes) -> None:
    """Write ``data`` to a user argument (int pointer or writable buffer); EFault otherwise."""
    if isinstance(arg, int):
        copy_to_user(arg & _U64, data)
        return
    try:
        view = memoryview(arg).cast("B")  # type: ignore[arg-type]
    except TypeError:
        raise EFault("copy_to_user") from None
    if view.readonly or len(view) < len(data):
        raise EFault("copy_to_user")
    view[: len(data)] = data
