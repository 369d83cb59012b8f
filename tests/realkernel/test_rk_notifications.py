"""Notification pipes with real records: one body per behaviour, run on the live kernel and the fake.

Each test takes the ``source`` fixture (see conftest.py): ``[keyring]`` runs in the QEMU guest
against the kernel's own watch queue with keyrings as the event source; ``[fake]`` runs the same
body against the fake backend.  Expected bytes are packed by hand from the spec (§1.2), and the
project's :class:`Watch`, :func:`parse_records` and :class:`Listener` read them.

Spec rows covered: §1.4 SET_SIZE errno table and page rounding, §1.5 SET_FILTER errno table and
matching (by subtype, by watch_id through info_mask, META bypass, unknown types), §1.6/§1.7 loss
and read semantics (LOSS alone on the next read, LOSS between records, ENOBUFS, whole records),
§1.7/§1.8 readiness (poll, FIONREAD, EOF, POLLHUP) and EXDEV, §1.9/§1.10 watch lifetime (EBUSY per queue, EBADSLT, ENOKEY, 16-byte REMOVAL).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import threading
import time
from collections.abc import Callable

import pytest
from rk_sources import (
    IOC_WATCH_QUEUE_SET_FILTER,
    IOC_WATCH_QUEUE_SET_SIZE,
    LOSS_RECORD,
    O_NOTIFICATION_PIPE,
    EventSource,
    filter_blob,
    key_record,
    removal_record,
)

from xeclient.events import Event, KeyNotification, Loss, Removal, parse_records
from xeclient.listener import Listener
from xeclient.uapi.constants import KeyNotify, WatchType
from xeclient.watch import TypeFilter, Watch

LINKED, UPDATED, UNLINKED = KeyNotify.LINKED, KeyNotify.UPDATED, KeyNotify.UNLINKED
KEYS = [TypeFilter(WatchType.KEY_NOTIFY)]
#: A kernel posts REMOVAL for a garbage-collected key tens of ms later; TCG is slow.
ASYNC_TIMEOUT = 15.0
#: An address never mapped in user space (the kernel's half).
BAD_PTR = 0xFFFF_8000_0000_0000
UNKNOWN_TYPE = 5  # >= WATCH_TYPE__NR on every kernel (mainline 2, with the xe series 3)
FIONREAD = 0x541B
POLLIN, POLLRDNORM, POLLHUP = select.POLLIN, select.POLLRDNORM, select.POLLHUP


def err(call: Callable[[], object]) -> int:
    """The errno ``call`` fails with (the test fails if it succeeds)."""
    with pytest.raises(OSError) as info:
        call()
    return int(info.value.errno or 0)


def key(subtype: int, key_id: int, aux: int, watch_id: int) -> KeyNotification:
    return KeyNotification(subtype, key_id, aux, watch_id)


def wait_events(watch: Watch, n: int, timeout: float = ASYNC_TIMEOUT) -> list[Event]:
    """At least ``n`` events, waiting up to ``timeout`` s (never a fixed sleep)."""
    got: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        got += watch.poll(timeout=left)
    return got


def wait_bytes(source: EventSource, fd: int, n: int, timeout: float = ASYNC_TIMEOUT) -> bytes:
    """Raw reads until ``n`` bytes arrived (or the timeout); the pipe is non-blocking."""
    out = b""
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        try:
            out += source.backend.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.005)
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                raise
            time.sleep(0.005)
    return out


def test_link_update_unlink_multiplexed(source: EventSource) -> None:
    """Two keyrings and a key on one pipe, told apart by watch_id; the key's REMOVAL after GC."""
    ring_a, ring_b = source.keyring(), source.keyring()
    with Watch(source.backend, filters=KEYS) as w:
        source.watch(ring_a, w.read_fd, 1)
        source.watch(ring_b, w.read_fd, 2)
        k1 = source.add_key(ring_a)
        k2 = source.add_key(ring_b)
        source.watch(k1, w.read_fd, 3)
        source.update(k1)
        source.unlink(ring_a, k1)  # k1's last link: destroyed, its watch removed
        a, b = ring_a.serial, ring_b.serial
        expected = (
            key_record(LINKED, a, k1.serial, 1)
            + key_record(LINKED, b, k2.serial, 2)
            + key_record(UPDATED, k1.serial, 0, 3)
            + key_record(UNLINKED, a, k1.serial, 1)
            + removal_record(3, k1.serial)
        )
        raw = wait_bytes(source, w.read_fd, len(expected))
        assert raw.hex(" ", 4) == expected.hex(" ", 4)
        assert parse_records(raw) == [
            key(LINKED, a, k1.serial, 1),
            key(LINKED, b, k2.serial, 2),
            key(UPDATED, k1.serial, 0, 3),
            key(UNLINKED, a, k1.serial, 1),
            Removal(3, k1.serial),
        ]
        assert w.poll() == []


def test_unwatch_posts_16_byte_removal(source: EventSource) -> None:
    """KEYCTL_WATCH_KEY with watch_id -1: a synchronous 16-byte REMOVAL carrying the serial."""
    ring = source.keyring()
    with Watch(source.backend, filters=KEYS) as w:
        source.watch(ring, w.read_fd, 7)
        source.unwatch(ring, w.read_fd)
        raw = source.backend.read(w.read_fd, 4096)
        assert raw == removal_record(7, ring.serial)
        assert len(raw) == 16
        assert parse_records(raw) == [Removal(7, ring.serial)]
        assert err(lambda: source.unwatch(ring, w.read_fd)) == errno.EBADSLT
        source.watch(ring, w.read_fd, 8)  # watchable again, under a new id
        k = source.add_key(ring)
        assert w.poll() == [key(LINKED, ring.serial, k.serial, 8)]


def test_watch_errno_table(source: EventSource) -> None:
    """keyctl_watch_key's checks (§1.10, §1.9): id range, queue lookup, EBUSY, EBADSLT, ENOKEY."""
    ring, other = source.keyring(), source.keyring()
    with Watch(source.backend, filters=KEYS) as w:
        assert err(lambda: source.watch(ring, w.read_fd, 256)) == errno.EINVAL
        assert err(lambda: source.watch(ring, w.read_fd, -2)) == errno.EINVAL
        r, wr = os.pipe()
        try:
            assert err(lambda: source.watch(ring, r, 1)) == errno.EINVAL  # an ordinary pipe
        finally:
            os.close(r)
            os.close(wr)
        assert err(lambda: source.watch(ring, 1_000_000, 1)) == errno.EINVAL  # no such descriptor
        source.watch(ring, w.read_fd, 1)
        assert err(lambda: source.watch(ring, w.read_fd, 2)) == errno.EBUSY  # per (queue, object)
        assert err(lambda: source.watch(ring, w.write_fd, 3)) == errno.EBUSY  # either end: one queue
        assert err(lambda: source.unwatch(other, w.read_fd)) == errno.EBADSLT
        k = source.add_key(ring)
        source.watch(k, w.read_fd, 4)
        source.unlink(ring, k)
        events = wait_events(w, 3)
        assert events == [
            key(LINKED, ring.serial, k.serial, 1),
            key(UNLINKED, ring.serial, k.serial, 1),
            Removal(4, k.serial),
        ]
        assert err(lambda: source.watch(k, w.read_fd, 5)) == errno.ENOKEY  # destroyed


def test_overflow_then_loss_alone_on_next_read(source: EventSource) -> None:
    """40 records into 32 notes, nothing read meanwhile: 32 records, then LOSS alone, then EAGAIN."""
    ring = source.keyring()
    k = source.add_key(ring)
    with Watch(source.backend, nr_notes=1, filters=KEYS) as w:
        source.watch(k, w.read_fd, 1)
        for _ in range(40):
            source.update(k)
        read = source.backend.read
        assert read(w.read_fd, 4096) == key_record(UPDATED, k.serial, 0, 1) * 32
        assert read(w.read_fd, 4096) == LOSS_RECORD
        assert err(lambda: read(w.read_fd, 4096)) == errno.EAGAIN


def test_loss_between_records(source: EventSource) -> None:
    """32 queued + 8 lost, 10 read, 5 more posted: 22 records, LOSS, 5 records, in one drain."""
    ring = source.keyring()
    k = source.add_key(ring)
    with Watch(source.backend, nr_notes=32, filters=KEYS) as w:
        source.watch(k, w.read_fd, 2)
        for _ in range(40):
            source.update(k)
        assert source.backend.read(w.read_fd, 160) == key_record(UPDATED, k.serial, 0, 2) * 10
        for _ in range(5):
            source.update(k)
        one = key(UPDATED, k.serial, 0, 2)
        assert w.poll() == [one] * 22 + [Loss()] + [one] * 5


def test_read_sizes(source: EventSource) -> None:
    """read(0) is 0; a read smaller than the first record is ENOBUFS; records are never split."""
    ring = source.keyring()
    with Watch(source.backend, filters=KEYS) as w:
        source.watch(ring, w.read_fd, 1)
        k1, k2 = source.add_key(ring), source.add_key(ring)
        read = source.backend.read
        assert read(w.read_fd, 0) == b""
        assert err(lambda: read(w.read_fd, 8)) == errno.ENOBUFS
        assert err(lambda: read(w.read_fd, 15)) == errno.ENOBUFS
        assert read(w.read_fd, 20) == key_record(LINKED, ring.serial, k1.serial, 1)
        assert read(w.read_fd, 31) == key_record(LINKED, ring.serial, k2.serial, 1)
        assert err(lambda: read(w.read_fd, 4096)) == errno.EAGAIN


def test_write_is_exdev(source: EventSource) -> None:
    """write() on a notification pipe: EXDEV, even for 0 bytes; EBADF on the read end."""
    with Watch(source.backend, filters=KEYS) as w:
        assert err(lambda: source.backend.write(w.write_fd, b"x")) == errno.EXDEV
        assert err(lambda: source.backend.write(w.write_fd, b"")) == errno.EXDEV
        assert err(lambda: source.backend.write(w.read_fd, b"x")) == errno.EBADF


def test_set_size_errno_table(source: EventSource) -> None:
    """IOC_WATCH_QUEUE_SET_SIZE (§1.4, §1.11): range, truncation to u32, once only, page rounding."""
    be = source.backend
    ioctl = be.ioctl
    r, w = be.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC | os.O_NONBLOCK)
    r2, w2 = be.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC | os.O_NONBLOCK)
    pr, pw = be.pipe2(os.O_CLOEXEC)
    try:

        def set_size(fd: int, n: int) -> Callable[[], object]:
            return lambda: ioctl(fd, IOC_WATCH_QUEUE_SET_SIZE, n)

        assert [err(set_size(r, bad)) for bad in (0, 513, -1)] == [errno.EINVAL] * 3
        assert ioctl(r, IOC_WATCH_QUEUE_SET_SIZE, 2**32 + 1) == 0  # an unsigned int: 1
        assert fcntl.fcntl(r, fcntl.F_GETPIPE_SZ) == 4096
        assert err(lambda: ioctl(r, IOC_WATCH_QUEUE_SET_SIZE, 0)) == errno.EBUSY  # EBUSY comes first
        assert err(lambda: ioctl(w, IOC_WATCH_QUEUE_SET_SIZE, 1)) == errno.EBUSY  # either end
        assert ioctl(w2, IOC_WATCH_QUEUE_SET_SIZE, 33) == 0
        assert fcntl.fcntl(r2, fcntl.F_GETPIPE_SZ) == 8192  # 2 pages of 32 notes
        assert err(lambda: ioctl(pr, IOC_WATCH_QUEUE_SET_SIZE, 1)) == errno.ENODEV
    finally:
        for fd in (r, w, r2, w2, pr, pw):
            be.close(fd)


def test_set_filter_errno_table(source: EventSource) -> None:
    """IOC_WATCH_QUEUE_SET_FILTER (§1.5, §1.11), check for check."""
    be = source.backend
    key_all = (int(WatchType.KEY_NOTIFY), 0xFFFFFFFF, 0, 0)
    cases: list[tuple[str, bytearray, int]] = [
        ("nr_filters 0", filter_blob([], nr=0), errno.EINVAL),
        ("nr_filters 17", filter_blob([key_all] * 17), errno.EINVAL),
        ("nr_filters 16", filter_blob([key_all] * 16), 0),
        ("__reserved 1", filter_blob([key_all], reserved=1), errno.EINVAL),
        ("info_filter outside info_mask", filter_blob([(1, ~0 & 0xFFFFFFFF, 0x100, 0)]), errno.EINVAL),
        ("info_filter inside info_mask", filter_blob([(1, 0xFFFFFFFF, 0x100, 0xFF00)]), 0),
        ("info_mask 0x7f", filter_blob([(1, 0xFFFFFFFF, 0, 0x7F)]), errno.EINVAL),
        ("info_mask 0x01", filter_blob([(1, 0xFFFFFFFF, 0, 0x01)]), errno.EINVAL),
        ("info_mask 0x40", filter_blob([(1, 0xFFFFFFFF, 0, 0x40)]), errno.EINVAL),
        ("info_mask 0x80", filter_blob([(1, 0xFFFFFFFF, 0, 0x80)]), 0),
        ("unknown type, bad mask", filter_blob([(UNKNOWN_TYPE, 1, 0, 0x01)]), errno.EINVAL),
        ("unknown type only", filter_blob([(UNKNOWN_TYPE, 1, 0, 0)]), 0),
    ]
    r, w = be.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC | os.O_NONBLOCK)
    pr, pw = be.pipe2(os.O_CLOEXEC)
    try:
        got = {}
        for name, blob, _ in cases:
            try:
                got[name] = be.ioctl(r, IOC_WATCH_QUEUE_SET_FILTER, blob)
            except OSError as exc:
                got[name] = exc.errno or -1
        assert got == {name: want for name, _, want in cases}
        assert be.ioctl(r, IOC_WATCH_QUEUE_SET_FILTER, 0) == 0  # NULL: no filter
        assert err(lambda: be.ioctl(r, IOC_WATCH_QUEUE_SET_FILTER, BAD_PTR)) == errno.EFAULT
        assert err(lambda: be.ioctl(pr, IOC_WATCH_QUEUE_SET_FILTER, filter_blob([key_all]))) == errno.ENODEV
    finally:
        for fd in (r, w, pr, pw):
            be.close(fd)


def test_filters_by_subtype_and_watch_id(source: EventSource) -> None:
    """Filters apply at post time (§1.5): by subtype, by watch_id through info_mask; META always passes."""
    ring_a, ring_b = source.keyring(), source.keyring()
    a, b = ring_a.serial, ring_b.serial
    only_linked = [TypeFilter(WatchType.KEY_NOTIFY, subtypes=frozenset({LINKED}))]
    with Watch(source.backend, filters=only_linked) as w:
        source.watch(ring_a, w.read_fd, 1)
        source.watch(ring_b, w.read_fd, 2)
        k = source.add_key(ring_a)  # LINKED: passes
        source.watch(k, w.read_fd, 3)
        source.update(k)  # UPDATED: dropped
        source.unlink(ring_a, k)  # UNLINKED: dropped; then k's REMOVAL: META, passes
        assert wait_events(w, 2) == [key(LINKED, a, k.serial, 1), Removal(3, k.serial)]

        w.set_filter([TypeFilter(WatchType.KEY_NOTIFY, info_filter=2 << 8, info_mask=0xFF00)])
        source.add_key(ring_a)  # watch_id 1: dropped
        kb = source.add_key(ring_b)  # watch_id 2: passes
        source.unwatch(ring_a, w.read_fd)  # REMOVAL of watch 1 passes whatever the filter
        assert w.poll() == [key(LINKED, b, kb.serial, 2), Removal(1, a)]

        kb2 = source.add_key(ring_b)  # queued now ...
        w.set_filter([TypeFilter(UNKNOWN_TYPE)])  # ... so a filter set later does not touch it
        source.add_key(ring_b)  # every known type is rejected now
        source.unwatch(ring_b, w.read_fd)
        assert w.poll() == [key(LINKED, b, kb2.serial, 2), Removal(2, b)]

        w.set_filter(None)  # accept everything
        source.watch(ring_a, w.read_fd, 9)
        k9 = source.add_key(ring_a)
        assert w.poll() == [key(LINKED, a, k9.serial, 9)]


def test_listener_dispatches_live_records(source: EventSource) -> None:
    """The Listener reads the pipe on its thread and routes by type and watch_id."""
    ring_a, ring_b = source.keyring(), source.keyring()
    got: list[Event] = []
    only_b: list[KeyNotification] = []
    done = threading.Event()

    def collect(ev: Event) -> None:
        got.append(ev)
        if len(got) == 3:
            done.set()

    with Watch(source.backend, filters=KEYS) as w:
        source.watch(ring_a, w.read_fd, 1)
        source.watch(ring_b, w.read_fd, 2)
        with Listener(w, collect, name="rk-listener") as listener:
            listener.add_handler(only_b.append, KeyNotification, watch_id=2)
            k1 = source.add_key(ring_a)
            k2 = source.add_key(ring_b)
            source.unlink(ring_a, k1)
            assert done.wait(ASYNC_TIMEOUT), got
            stats = listener.stats()
    a, b = ring_a.serial, ring_b.serial
    assert got == [key(LINKED, a, k1.serial, 1), key(LINKED, b, k2.serial, 2), key(UNLINKED, a, k1.serial, 1)]
    assert only_b == [key(LINKED, b, k2.serial, 2)]
    assert (stats.received, stats.dropped, stats.errors, stats.by_type) == (3, 0, 0, {"key": 3})


def test_readiness_loss_and_eof(source: EventSource) -> None:
    """poll()/FIONREAD (§1.7, §1.8, §1.11): a pending LOSS is not readable; EOF and POLLHUP after
    the write end is closed, and delivery goes on."""
    ring = source.keyring()
    k = source.add_key(ring)
    with Watch(source.backend, nr_notes=1, filters=KEYS) as w:
        source.watch(k, w.read_fd, 1)

        def revents() -> int:
            poller = select.poll()
            poller.register(w.read_fd, POLLIN | POLLRDNORM)
            return sum(ev for _, ev in poller.poll(0))

        def fionread() -> int:
            buf = bytearray(4)
            source.backend.ioctl(w.read_fd, FIONREAD, buf)
            return int.from_bytes(buf, "little")

        assert (revents(), fionread()) == (0, 0)
        for _ in range(33):
            source.update(k)
        assert (revents(), fionread()) == (POLLIN | POLLRDNORM, 32 * 16)
        assert len(source.backend.read(w.read_fd, 4096)) == 32 * 16
        assert (revents(), fionread()) == (0, 0)  # the LOSS is pending, yet nothing is readable
        assert source.backend.read(w.read_fd, 4096) == LOSS_RECORD

        w.close_write_end()
        assert revents() == POLLHUP
        assert source.backend.read(w.read_fd, 4096) == b""  # EOF, not EAGAIN
        source.update(k)  # delivery continues while the read end is open
        assert revents() == POLLIN | POLLRDNORM | POLLHUP
        assert source.backend.read(w.read_fd, 4096) == key_record(UPDATED, k.serial, 0, 1)
        assert source.backend.read(w.read_fd, 4096) == b""


def test_records_before_set_size_vanish(source: EventSource) -> None:
    """A watch on an unsized queue: what is posted finds no note and is dropped, with no LOSS (§1.4)."""
    ring = source.keyring()
    be = source.backend
    r, w = be.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        source.watch(ring, r, 1)
        source.add_key(ring)  # dropped
        assert be.ioctl(r, IOC_WATCH_QUEUE_SET_SIZE, 32) == 0
        k = source.add_key(ring)
        assert be.read(r, 4096) == key_record(LINKED, ring.serial, k.serial, 1)
        assert err(lambda: be.read(r, 4096)) == errno.EAGAIN
    finally:
        be.close(r)
        be.close(w)
