"""Notification pipes with records in them: the fake's queue model driven by a WatchSource.

A :class:`WatchSource` stands in for a key (spec §1.10): ``id`` is the key
serial, records are ``key_notification``-shaped (type 1, 16 bytes with a
sequence number in ``key_id``).  Rows: spec §1.4 (capacity), §1.5 (what a
filter lets through), §1.6 (posting, loss), §1.7 (read, LOSS placement,
readiness, blocking), §1.9 (watch lifetime) and the §1.11 live observations.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import select
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conformance import rawabi

from xeclient.backends.fake import FakeBackend
from xeclient.backends.fake.watch_queue import (
    Watch,
    WatchList,
    WatchQueue,
    WatchSource,
    add_watch_to_object,
    get_watch_queue,
    post_watch_notification,
    remove_watch_from_object,
    watch_header,
)

O_NOTIFICATION_PIPE = 0x80
SET_SIZE, SET_FILTER, FIONREAD = 0x5760, 0x5761, 0x541B
POLLIN, POLLRDNORM, POLLHUP = 0x001, 0x040, 0x010
READABLE = POLLIN | POLLRDNORM
LOSS = bytes.fromhex("0000000108000000")
KEY = 1  # WATCH_TYPE_KEY_NOTIFY
LINKED = 2


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBackend]:
    backend = FakeBackend()
    yield backend
    backend.shutdown()


class Pipe(rawabi.NotificationPipe):
    def size(self, n: int) -> None:
        assert self.backend.ioctl(self.r, SET_SIZE, n) == 0

    def read(self, n: int = 65536) -> bytes:
        return self.backend.read(self.r, n)

    def read_errno(self, n: int = 65536) -> int:
        with pytest.raises(OSError) as info:
            self.backend.read(self.r, n)
        return int(info.value.errno or 0)

    def fionread(self) -> int:
        buf = bytearray(4)
        assert self.backend.ioctl(self.r, FIONREAD, buf) == 0
        return int(struct.unpack("<i", buf)[0])

    def revents(self) -> int:
        poller = select.poll()
        poller.register(self.r, READABLE)
        got = poller.poll(0)
        return got[0][1] if got else 0

    def set_filter(self, *entries: tuple[int, int, int, int]) -> None:
        data = struct.pack("<II", len(entries), 0)
        for type_, info_filter, info_mask, subtypes in entries:
            data += struct.pack("<III8I", type_, info_filter, info_mask, subtypes, *[0] * 7)
        assert self.backend.ioctl(self.r, SET_FILTER, bytearray(data)) == 0


@pytest.fixture
def make_pipe(fake: FakeBackend) -> Iterator[Callable[..., Pipe]]:
    made: list[Pipe] = []

    def make(size: int | None = 32, flags: int = os.O_CLOEXEC | os.O_NONBLOCK) -> Pipe:
        p = Pipe(fake, flags)
        made.append(p)
        if size is not None:
            p.size(size)
        return p

    yield make
    for p in made:
        for fd in sorted(p.open):
            p.close(fd)


@pytest.fixture
def pipe(make_pipe: Callable[..., Pipe]) -> Pipe:
    return make_pipe()


def key_record(watch_id: int, seq: int, subtype: int = LINKED, aux: int = 0) -> bytes:
    """A 16-byte key-like record as read: info = watch_id << 8 | 16, key_id = ``seq``."""
    return struct.pack("<IIII", KEY | subtype << 24, watch_id << 8 | 16, seq, aux)


def post_seq(src: WatchSource, seqs: range | list[int], subtype: int = LINKED) -> None:
    for seq in seqs:
        src.post(KEY, subtype, struct.pack("<II", seq, 0))


def seqs_of(data: bytes) -> list[int | str]:
    """Split a read into records: sequence numbers, "LOSS", or "REMOVAL"."""
    out: list[int | str] = []
    off = 0
    while off < len(data):
        ts, info = struct.unpack_from("<II", data, off)
        length = info & 0x7F
        assert length >= 8, data[off:].hex()
        if ts & 0xFFFFFF == 0:
            out.append("LOSS" if ts >> 24 == 1 else "REMOVAL")
        else:
            out.append(struct.unpack_from("<I", data, off + 8)[0])
        off += length
    assert off == len(data)
    return out


def errno_of(call: Callable[..., Any], *args: Any) -> int:
    with pytest.raises(OSError) as info:
        call(*args)
    return int(info.value.errno or 0)


def source(fake: FakeBackend, pipe: Pipe, id: int = 0x2A, watch_id: int = 1) -> WatchSource:
    src: WatchSource = fake.watch_source(id)
    src.add_watch(pipe.r, watch_id)
    return src


# --- record bytes (§1.2, §1.6) -----------------------------------------------------------------------------
def test_record_carries_the_watch_id(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe, watch_id=1)
    src.post(KEY, LINKED, struct.pack("<II", 0x11223344, 0x55667788))
    assert pipe.read() == bytes.fromhex("01000002100100004433221188776655")


def test_posted_id_bits_are_replaced(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe, watch_id=9)
    post_watch_notification(src.watch_list, watch_header(KEY, 0, 0xAB00 | 16) + bytes(8), src.id)
    assert pipe.read() == watch_header(KEY, 0, 0x0900 | 16) + bytes(8)


def test_type_info_bits_are_kept(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe, watch_id=2)
    src.post(KEY, 0, b"", info_flags=0x00810000)
    assert pipe.read() == watch_header(KEY, 0, 0x00810000 | 0x200 | 8)


def test_zero_length_record_is_dropped(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_watch_notification(src.watch_list, watch_header(KEY, 0, 0) + bytes(8), src.id)
    assert pipe.read_errno() == errno.EAGAIN
    with pytest.raises(ValueError):
        post_watch_notification(src.watch_list, watch_header(KEY, 0, 24) + bytes(8), src.id)


def test_only_watches_with_the_posted_id_get_it(fake: FakeBackend, pipe: Pipe) -> None:
    a, b = source(fake, pipe, id=1, watch_id=1), source(fake, pipe, id=2, watch_id=2)
    post_watch_notification(a.watch_list, watch_header(KEY, 0, 16) + bytes(8), 2)  # no watch with id 2 on a
    assert pipe.read_errno() == errno.EAGAIN
    b.post(KEY, 0, bytes(8))
    assert pipe.read() == watch_header(KEY, 0, 0x200 | 16) + bytes(8)


def test_mixed_lengths_back_to_back(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe, watch_id=3)
    for payload in (b"", bytes(8), bytes(16), bytes(119)):
        src.post(KEY, 0, payload)
    data = pipe.read()
    assert len(data) == 8 + 16 + 24 + 127
    assert [len(x) for x in (data[:8], data[8:24], data[24:48], data[48:])] == [8, 16, 24, 127]


# --- capacity and loss (§1.4, §1.6, §1.7, §1.11) --------------------------------------------------------------
@pytest.mark.parametrize(("n", "capacity"), [(1, 32), (32, 32), (33, 64), (256, 256), (512, 512), ((1 << 32) + 1, 32)])
def test_capacity_is_rounded_up_notes(fake: FakeBackend, make_pipe: Callable[..., Pipe], n: int, capacity: int) -> None:
    p = make_pipe(size=n)
    src = source(fake, p)
    post_seq(src, range(capacity + 3))
    assert p.fionread() == capacity * 16
    assert seqs_of(p.read()) == list(range(capacity))  # no LOSS yet: the flagged record was the last
    assert p.read() == LOSS
    assert p.read_errno() == errno.EAGAIN


def test_forty_events_into_32_notes(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_seq(src, range(40))
    assert seqs_of(pipe.read(4096)) == list(range(32))
    assert pipe.read(4096) == LOSS
    assert pipe.read_errno(4096) == errno.EAGAIN


def test_loss_between_records(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_seq(src, range(40))  # 32 queued, 8 lost: the flag is on record 31
    assert seqs_of(pipe.read(10 * 16)) == list(range(10))
    post_seq(src, range(100, 105))
    assert seqs_of(pipe.read()) == [*range(10, 32), "LOSS", *range(100, 105)]


def test_losses_merge_into_one_loss_per_flagged_record(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_seq(src, range(32))
    post_seq(src, range(900, 905))  # five losses, one flag on record 31
    for i in range(3):
        assert seqs_of(pipe.read(16)) == [i]  # frees one note
        post_seq(src, [1000 + i])  # queued: now the newest record
        post_seq(src, range(900, 905))  # lost again: the flag lands on 1000 + i
    assert seqs_of(pipe.read()) == [*range(3, 32), "LOSS", 1000, "LOSS", 1001, "LOSS", 1002]
    assert pipe.read() == LOSS  # 1002 was the last record: its LOSS comes with the next read


def test_loss_needs_8_bytes_of_room(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_seq(src, range(33))  # flag on record 31, the last
    assert len(pipe.read()) == 32 * 16
    assert pipe.read_errno(7) == errno.ENOBUFS
    assert pipe.read(8) == LOSS


def test_loss_mid_read_without_room_waits_for_the_next_read(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_seq(src, range(32))
    post_seq(src, [99])  # lost: flag on record 31
    assert seqs_of(pipe.read(16)) == [0]
    post_seq(src, [32])  # queued after the flagged record
    assert len(pipe.read(30 * 16)) == 30 * 16  # records 1..30
    assert seqs_of(pipe.read(16 + 4)) == [31]  # consumed; the LOSS would need 8 bytes, 4 are left
    assert seqs_of(pipe.read()) == ["LOSS", 32]


def test_pending_loss_only_is_not_readable_and_not_counted(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_seq(src, range(33))
    pipe.read()
    assert pipe.revents() == 0
    assert pipe.fionread() == 0
    post_seq(src, [7])
    assert pipe.revents() == READABLE
    assert pipe.fionread() == 16  # LOSS excluded
    assert seqs_of(pipe.read()) == ["LOSS", 7]


def test_events_before_set_size_are_dropped_without_loss(fake: FakeBackend, make_pipe: Callable[..., Pipe]) -> None:
    p = make_pipe(size=None)
    src = source(fake, p)
    post_seq(src, range(5))
    assert p.revents() == 0
    p.size(1)
    assert p.read_errno() == errno.EAGAIN
    post_seq(src, [9])
    assert p.read() == key_record(1, 9)
    assert p.read_errno() == errno.EAGAIN


# --- read sizes (§1.7, §1.11) --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 8, 15])
def test_read_smaller_than_the_first_record_is_enobufs(fake: FakeBackend, pipe: Pipe, n: int) -> None:
    src = source(fake, pipe)
    post_seq(src, [1])
    assert pipe.read_errno(n) == errno.ENOBUFS
    assert pipe.fionread() == 16  # the record stays queued
    assert pipe.read(16) == key_record(1, 1)


@pytest.mark.parametrize("n", [16, 20, 31])
def test_read_returns_whole_records_only(fake: FakeBackend, pipe: Pipe, n: int) -> None:
    src = source(fake, pipe)
    post_seq(src, [1, 2])
    assert pipe.read(n) == key_record(1, 1)
    assert pipe.read(n) == key_record(1, 2)


def test_read_zero_with_records_queued(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_seq(src, [1])
    assert pipe.read(0) == b""
    assert pipe.fionread() == 16


def test_fionread_counts_bytes_through_buffer_and_pointer(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    src.post(KEY, 0, bytes(8))
    src.post(KEY, 0, b"")
    value = ctypes.c_int(-1)
    assert fake.ioctl(pipe.w, FIONREAD, ctypes.addressof(value)) == 0
    assert value.value == 24 == pipe.fionread()
    assert errno_of(fake.ioctl, pipe.r, FIONREAD, 8) == errno.EFAULT
    assert errno_of(fake.ioctl, pipe.r, FIONREAD, bytearray(2)) == errno.EFAULT


# --- readiness (§1.7, §1.11) ---------------------------------------------------------------------------------------------
def test_readiness_follows_the_ring(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    assert pipe.revents() == 0
    post_seq(src, [1, 2])
    assert pipe.revents() == READABLE
    assert select.select([pipe.r], [], [], 0)[0] == [pipe.r]
    pipe.read(16)
    assert pipe.revents() == READABLE
    pipe.read(16)
    assert pipe.revents() == 0
    assert select.select([pipe.r], [], [], 0)[0] == []


def test_write_end_closed_with_records_then_empty(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_seq(src, [1])
    pipe.close(pipe.w)
    assert pipe.revents() == READABLE | POLLHUP  # 0x51
    assert pipe.read() == key_record(1, 1)
    assert pipe.revents() == POLLHUP  # 0x10 only
    assert pipe.read() == b""


def test_write_end_closed_new_event_still_delivered(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    pipe.close(pipe.w)
    assert pipe.revents() == POLLHUP
    post_seq(src, [5])
    assert pipe.revents() == READABLE | POLLHUP
    assert pipe.read() == key_record(1, 5)
    assert pipe.revents() == POLLHUP
    assert pipe.read() == b""
    post_seq(src, [6, 7])  # again, after EOF was seen
    assert seqs_of(pipe.read()) == [6, 7]


def test_loss_pending_and_write_end_closed(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_seq(src, range(34))
    pipe.close(pipe.w)
    assert seqs_of(pipe.read()) == list(range(32))
    assert pipe.revents() == POLLHUP
    assert pipe.read() == LOSS
    assert pipe.read() == b""


def test_read_end_closed_posting_goes_on(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    pipe.close(pipe.r)
    post_seq(src, range(40))  # into a ring nobody reads; no token, no error
    assert len(src.watch_list) == 1
    pipe.close(pipe.w)
    assert len(src.watch_list) == 0


# --- blocking reads (§1.7): the wait holds no lock ---------------------------------------------------------------------
def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # report to the test
            result.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def test_blocking_read_waits_for_a_record(fake: FakeBackend, make_pipe: Callable[..., Pipe]) -> None:
    p = make_pipe(flags=os.O_CLOEXEC)
    src = source(fake, p)
    t, result = _in_thread(p.read)
    time.sleep(0.05)
    assert not result
    p.set_filter((KEY, 0, 0, 0xFFFFFFFF))  # the queue lock is free while the reader waits
    assert p.fionread() == 0
    post_seq(src, [3])
    t.join(5)
    assert result == [key_record(1, 3)]


def test_blocking_read_sees_eof_when_the_write_end_closes(fake: FakeBackend, make_pipe: Callable[..., Pipe]) -> None:
    p = make_pipe(flags=os.O_CLOEXEC)
    t, result = _in_thread(p.read)
    time.sleep(0.05)
    assert not result
    p.close(p.w)
    t.join(5)
    assert result == [b""]


def test_pending_loss_blocking_read_returns_it_but_poll_waits(
    fake: FakeBackend, make_pipe: Callable[..., Pipe]
) -> None:
    p = make_pipe(flags=os.O_CLOEXEC)
    src = source(fake, p)
    post_seq(src, range(33))
    p.read()
    poller = select.poll()
    poller.register(p.r, READABLE)
    assert poller.poll(50) == []  # a reader waiting for POLLIN does not see the LOSS ...
    post_seq(src, [50])
    assert poller.poll(1000) == [(p.r, READABLE)]  # ... until the next real record
    assert seqs_of(p.read()) == ["LOSS", 50]
    post_seq(src, range(100, 133))  # 32 queued, 132 lost: flag on 131
    assert seqs_of(p.read()) == list(range(100, 132))
    t, result = _in_thread(p.read)  # a blocking read() emits a pending LOSS at once (top of the loop)
    t.join(5)
    assert result == [LOSS]


def test_fionbio_is_the_vfs_ioctl(fake: FakeBackend, make_pipe: Callable[..., Pipe]) -> None:
    import fcntl
    import termios

    p = make_pipe(flags=os.O_CLOEXEC)
    assert fake.ioctl(p.r, termios.FIONBIO, bytearray(struct.pack("<i", 1))) == 0
    assert fcntl.fcntl(p.r, fcntl.F_GETFL) & os.O_NONBLOCK
    assert p.read_errno() == errno.EAGAIN


def test_concurrent_poster_and_reader(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    total = 400
    t, _ = _in_thread(lambda: post_seq(src, range(total)))
    got: list[int | str] = []
    poller = select.poll()
    poller.register(pipe.r, READABLE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        poller.poll(20)
        try:
            got += seqs_of(pipe.read(16 * 7))
        except OSError as exc:
            assert exc.errno == errno.EAGAIN
            if not t.is_alive():
                break
    t.join(5)
    try:
        got += seqs_of(pipe.read())
        got += seqs_of(pipe.read())
    except OSError as exc:
        assert exc.errno == errno.EAGAIN
    numbers = [x for x in got if isinstance(x, int)]
    assert numbers == sorted(set(numbers)) and numbers[0] == 0
    for prev, cur, nxt in zip(got, got[1:], got[2:], strict=False):  # a gap is always marked by a LOSS in between
        if isinstance(prev, int) and isinstance(nxt, int) and cur == "LOSS":
            assert nxt > prev + 1
    for a, b in itertools.pairwise(got):
        if isinstance(a, int) and isinstance(b, int):
            assert b == a + 1


# --- filters at post time (§1.5) ---------------------------------------------------------------------------------------------
def test_filter_by_subtype(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    pipe.set_filter((KEY, 0, 0, 1 << 2 | 1 << 5))
    for subtype in range(8):
        post_seq(src, [subtype], subtype=subtype)
    assert seqs_of(pipe.read()) == [2, 5]


def test_filter_by_watch_id_through_info_mask(fake: FakeBackend, pipe: Pipe) -> None:
    a, b = source(fake, pipe, id=1, watch_id=1), source(fake, pipe, id=2, watch_id=2)
    pipe.set_filter((KEY, 0x0200, 0xFF00, 0xFFFFFFFF))
    post_seq(a, [10])
    post_seq(b, [20])
    assert pipe.read() == key_record(2, 20)


def test_filter_by_info_flag(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    pipe.set_filter((KEY, 0x10000, 0x10000, 0xFFFFFFFF))
    src.post(KEY, 0, struct.pack("<II", 1, 0))
    src.post(KEY, 0, struct.pack("<II", 2, 0), info_flags=0x10000)
    assert seqs_of(pipe.read()) == [2]


def test_filter_any_entry_of_the_type_matches(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    pipe.set_filter((KEY, 0, 0, 1 << 1), (KEY, 0, 0, 1 << 3), (99, 0, 0, 0xFFFFFFFF))
    for subtype in range(5):
        post_seq(src, [subtype], subtype=subtype)
    assert seqs_of(pipe.read()) == [1, 3]


def test_filter_of_another_type_rejects(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    pipe.set_filter((2, 0, 0, 0xFFFFFFFF))
    post_seq(src, [1])
    assert pipe.read_errno() == errno.EAGAIN


def test_only_unknown_types_reject_everything_but_meta(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe, watch_id=4)
    pipe.set_filter((99, 0, 0, 0xFFFFFFFF))
    post_seq(src, [1, 2])
    assert pipe.read_errno() == errno.EAGAIN
    src.remove_watch(pipe.r)
    assert pipe.read() == watch_header(0, 0, 0x400 | 16) + struct.pack("<Q", 0x2A)


def test_filter_is_not_retroactive_and_loss_passes(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_seq(src, range(33))
    pipe.set_filter((99, 0, 0, 0))
    assert seqs_of(pipe.read()) == list(range(32))
    assert pipe.read() == LOSS


def test_null_filter_lets_everything_through_again(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    pipe.set_filter((99, 0, 0, 0))
    post_seq(src, [1])
    assert fake.ioctl(pipe.w, SET_FILTER, 0) == 0
    post_seq(src, [2])
    assert seqs_of(pipe.read()) == [2]


def test_filter_through_a_user_pointer(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    raw = struct.pack("<II", 1, 0) + struct.pack("<III8I", KEY, 0, 0, 1 << 4, *[0] * 7)
    buf = ctypes.create_string_buffer(raw, len(raw))
    assert fake.ioctl(pipe.r, SET_FILTER, ctypes.addressof(buf)) == 0
    post_seq(src, [3], subtype=3)
    post_seq(src, [4], subtype=4)
    assert seqs_of(pipe.read()) == [4]


# --- watch lifetime (§1.9, §1.10, §1.11) -------------------------------------------------------------------------------------------
def test_same_source_twice_on_one_queue_is_ebusy(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe, watch_id=1)
    assert errno_of(src.add_watch, pipe.r, 1) == errno.EBUSY
    assert errno_of(src.add_watch, pipe.w, 2) == errno.EBUSY  # any watch_id, either end


def test_one_source_many_queues(fake: FakeBackend, make_pipe: Callable[..., Pipe]) -> None:
    p1, p2 = make_pipe(), make_pipe()
    src = source(fake, p1, watch_id=1)
    src.add_watch(p2.w, 2)
    post_seq(src, [8])
    assert p1.read() == key_record(1, 8)
    assert p2.read() == key_record(2, 8)


@pytest.mark.parametrize("watch_id", [-1, 256, 1 << 32])
def test_add_watch_bad_watch_id(fake: FakeBackend, pipe: Pipe, watch_id: int) -> None:
    assert errno_of(fake.watch_source(1).add_watch, pipe.r, watch_id) == errno.EINVAL


def test_add_watch_bad_descriptors(fake: FakeBackend, pipe: Pipe) -> None:
    src = fake.watch_source(1)
    r, w = fake.pipe2(os.O_CLOEXEC)
    drm = fake.open(fake.render_nodes()[0], os.O_RDWR | os.O_CLOEXEC)
    try:
        for fd in (r, w, drm, 0x7FFFFFFF, -1):
            assert errno_of(src.add_watch, fd, 1) == errno.EINVAL
            assert errno_of(src.remove_watch, fd) == errno.EINVAL
            assert get_watch_queue(fake, fd) == -errno.EINVAL
    finally:
        fake.close(r)
        fake.close(w)
        fake.close(drm)


def test_get_watch_queue_either_end(fake: FakeBackend, pipe: Pipe) -> None:
    q = get_watch_queue(fake, pipe.r)
    assert isinstance(q, WatchQueue)
    assert get_watch_queue(fake, pipe.w) is q


def test_remove_watch_sends_removal_with_id(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe, id=0x2A, watch_id=1)
    src.remove_watch(pipe.w)
    assert pipe.read() == bytes.fromhex("00000000100100002a00000000000000")
    assert errno_of(src.remove_watch, pipe.r) == errno.EBADSLT
    post_seq(src, [1])
    assert pipe.read_errno() == errno.EAGAIN
    src.add_watch(pipe.r, 1)  # may watch again
    post_seq(src, [2])
    assert pipe.read() == key_record(1, 2)


def test_remove_watch_with_id_zero_is_8_bytes(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe, id=0, watch_id=5)
    src.remove_watch(pipe.r)
    assert pipe.read() == bytes.fromhex("0000000008050000")


def test_remove_watch_only_that_queue(fake: FakeBackend, make_pipe: Callable[..., Pipe]) -> None:
    p1, p2 = make_pipe(), make_pipe()
    src = source(fake, p1, watch_id=1)
    src.add_watch(p2.r, 2)
    src.remove_watch(p2.r)
    post_seq(src, [4])
    assert p1.read() == key_record(1, 4)
    assert seqs_of(p2.read()) == ["REMOVAL"]


def test_destroy_sends_removal_to_every_watch(fake: FakeBackend, make_pipe: Callable[..., Pipe]) -> None:
    p1, p2 = make_pipe(), make_pipe()
    src = source(fake, p1, id=7, watch_id=1)
    src.add_watch(p2.r, 2)
    src.destroy()
    assert p1.read() == watch_header(0, 0, 0x100 | 16) + struct.pack("<Q", 7)
    assert p2.read() == watch_header(0, 0, 0x200 | 16) + struct.pack("<Q", 7)
    src.post(KEY, 0, b"")  # nothing left to post to
    assert p1.read_errno() == errno.EAGAIN
    assert errno_of(src.add_watch, p1.r, 1) == errno.ENOKEY


def test_removal_counts_against_capacity(fake: FakeBackend, pipe: Pipe) -> None:
    src = source(fake, pipe)
    post_seq(src, range(32))
    src.remove_watch(pipe.r)  # lost: the ring is full
    assert seqs_of(pipe.read()) == list(range(32))
    assert pipe.read() == LOSS


def test_remove_watch_from_object_with_all_and_empty_list() -> None:
    assert remove_watch_from_object(WatchList(), None, 0, True) == -errno.EBADSLT


def test_last_close_detaches_every_watch_silently(fake: FakeBackend, make_pipe: Callable[..., Pipe]) -> None:
    p = make_pipe()
    a, b = source(fake, p, id=1), source(fake, p, id=2, watch_id=2)
    q = get_watch_queue(fake, p.r)
    assert isinstance(q, WatchQueue)
    p.close(p.w)
    assert len(a.watch_list) == len(b.watch_list) == 1  # the read end still holds the queue
    p.close(p.r)
    assert len(a.watch_list) == len(b.watch_list) == 0
    assert q.defunct
    assert add_watch_to_object(Watch.create(q, 1, 1), a.watch_list) == -errno.ENOENT
    a.post(KEY, 0, b"")  # nothing to deliver to, no error
    a.destroy()  # no REMOVAL anywhere, no error


def test_closing_the_read_end_first_then_the_write_end(fake: FakeBackend, make_pipe: Callable[..., Pipe]) -> None:
    p = make_pipe()
    src = source(fake, p)
    p.close(p.r)
    assert len(src.watch_list) == 1
    p.close(p.w)
    assert len(src.watch_list) == 0
