"""The listener core and Watch iterators over a seam double.

The double hands out a ``SOCK_SEQPACKET`` socket pair for ``pipe2``: like a
notification pipe it keeps record boundaries (a read returns whole writes,
never part of one), reads EOF once the write end is closed and polls POLLHUP
then.  The watch-queue ioctls are accepted and ignored.  The tests write the
records themselves; fake- and kernel-backed behaviour (removal on close,
overflow, LOSS) is tested in tests/fake and tests/conformance.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from xeclient.events import Event, KeyNotification, Loss, Removal, VmError
from xeclient.listener import DEFAULT_SWITCH_INTERVAL, EndReason, ForkedListenerError, Listener
from xeclient.watch import Watch

LOSS = struct.pack("<II", 1 << 24, 8)


class RecordSeam:
    """A seam double whose "notification pipe" is a SOCK_SEQPACKET socket pair."""

    name = "record-double"

    def render_nodes(self) -> list[str]:
        return []

    def open(self, path: str, flags: int) -> int:
        raise OSError(2, "no device in the seam double")

    def close(self, fd: int) -> None:
        os.close(fd)

    def ioctl(self, fd: int, request: int, arg: object) -> int:
        return 0

    def pipe2(self, flags: int) -> tuple[int, int]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        rfd, wfd = a.detach(), b.detach()
        for fd in (rfd, wfd):
            os.set_blocking(fd, not flags & os.O_NONBLOCK)
            os.set_inheritable(fd, False)
        return rfd, wfd

    def read(self, fd: int, n: int) -> bytes:
        return os.read(fd, n)

    def write(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)


def vm_err(vm_id: int, errno_: int = 28, watch_id: int = 0, ts: int | None = None) -> bytes:
    ts = time.monotonic_ns() if ts is None else ts
    return struct.pack("<IIIiQ", 2, watch_id << 8 | 24, vm_id, -errno_, ts)


def removal(watch_id: int) -> bytes:
    return struct.pack("<II", 0, watch_id << 8 | 8)


def key(watch_id: int) -> bytes:
    return struct.pack("<IIII", 1 | 2 << 24, watch_id << 8 | 16, 1, 2)


@pytest.fixture
def watch() -> Iterator[Watch]:
    w = Watch(RecordSeam(), filters=None)
    yield w
    w.close()


def post(watch: Watch, *records: bytes) -> None:
    """Write whole records; waits while the (non-blocking) pipe is full."""
    data = b"".join(records)
    while True:
        try:
            assert os.write(watch.write_fd, data) == len(data)
            return
        except BlockingIOError:
            time.sleep(0.001)


def wait_for(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.002)
    return bool(predicate())  # type: ignore[operator]


class Collector:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, ev: Event) -> None:
        with self.lock:
            self.events.append(ev)
            self.threads.add(threading.current_thread().name)


# --- delivery -------------------------------------------------------------------------------
def test_events_delivered_in_order_on_the_dispatcher_thread(watch: Watch) -> None:
    got = Collector()
    with Listener(watch, got, name="t1") as listener:
        post(watch, *(vm_err(i) for i in range(1, 51)))
        post(watch, LOSS, key(3), removal(9))
        assert wait_for(lambda: len(got.events) == 53)
        stats = listener.stats()
    assert [e.vm_id for e in got.events[:50]] == list(range(1, 51))  # type: ignore[attr-defined]
    assert got.events[50:] == [Loss(), KeyNotification(2, 1, 2, 3), Removal(9)]
    assert got.threads == {"t1-dispatch"}
    assert stats.received == 53 and stats.dropped == 1 and stats.errors == 0
    assert stats.by_type == {"vm_error": 50, "loss": 1, "key": 1, "removal": 1}
    assert stats.dispatched == 53
    assert listener.ended_reason == EndReason.STOPPED
    assert listener.ended_reason == "stopped"  # type: ignore[comparison-overlap]  # a str enum


def test_a_raising_handler_does_not_stop_the_next_one_nor_later_events(watch: Watch) -> None:
    seen: list[tuple[str, int]] = []
    errors: list[tuple[BaseException, Event]] = []

    def bad(ev: VmError) -> None:
        seen.append(("bad", ev.vm_id))
        if ev.vm_id % 2:
            raise RuntimeError(f"policy failed on {ev.vm_id}")

    def good(ev: VmError) -> None:
        seen.append(("good", ev.vm_id))

    listener = Listener(watch, on_error=lambda exc, ev: errors.append((exc, ev)))
    listener.add_handler(bad, VmError)
    listener.add_handler(good, VmError)
    with listener:
        post(watch, vm_err(1), vm_err(2), vm_err(3))
        assert wait_for(lambda: len(seen) == 6)
    assert seen == [("bad", 1), ("good", 1), ("bad", 2), ("good", 2), ("bad", 3), ("good", 3)]
    assert [(str(e), ev.vm_id) for e, ev in errors] == [("policy failed on 1", 1), ("policy failed on 3", 3)]  # type: ignore[attr-defined]
    assert listener.stats().errors == 2


def test_default_error_hook_logs_the_traceback_and_counts(watch: Watch, caplog: pytest.LogCaptureFixture) -> None:
    def boom(ev: Event) -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="xeclient.listener"), Listener(watch, boom) as listener:
        post(watch, vm_err(5))
        assert wait_for(lambda: listener.stats().errors == 1)
    [rec] = [r for r in caplog.records if "handler failed" in r.getMessage()]
    assert rec.exc_info is not None and rec.exc_info[0] is ValueError
    assert "vm 5" in rec.getMessage()


def test_a_failing_error_hook_is_counted_and_dispatch_goes_on(watch: Watch) -> None:
    got = Collector()

    def hook(exc: BaseException, ev: Event) -> None:
        raise KeyError("hook")

    listener = Listener(watch, lambda ev: 1 / 0, on_error=hook)
    listener.add_handler(got)
    with listener:
        post(watch, vm_err(1), vm_err(2))
        assert wait_for(lambda: len(got.events) == 2)
    assert listener.stats().errors == 4


def test_handler_filters_by_type_tuple_and_watch_id(watch: Watch) -> None:
    listener = Listener(watch)
    vm_any, vm_w2, meta, everything = Collector(), Collector(), Collector(), Collector()
    listener.add_handler(vm_any, VmError)
    listener.add_handler(vm_w2, VmError, watch_id=2)
    listener.add_handler(meta, (Loss, Removal), watch_id=1)
    listener.on()(everything)
    with listener:
        post(watch, vm_err(10, watch_id=1), vm_err(20, watch_id=2), LOSS, removal(1), removal(2), key(2))
        assert wait_for(lambda: len(everything.events) == 6)
    assert [e.vm_id for e in vm_any.events] == [10, 20]  # type: ignore[attr-defined]
    assert [e.vm_id for e in vm_w2.events] == [20]  # type: ignore[attr-defined]
    assert meta.events == [Loss(), Removal(1)]  # a Loss concerns every watch_id on the pipe


def test_on_decorator_and_remove_handler(watch: Watch) -> None:
    listener = Listener(watch)
    got: list[int] = []

    @listener.on(VmError)
    def handler(ev: VmError) -> None:
        got.append(ev.vm_id)

    assert handler.__name__ == "handler"
    with listener:
        post(watch, vm_err(1))
        assert wait_for(lambda: got == [1])
        listener.remove_handler(handler)
        post(watch, vm_err(2))
        assert wait_for(lambda: listener.stats().dispatched == 2)
    assert got == [1]


def test_add_handler_rejects_bad_arguments(watch: Watch) -> None:
    listener = Listener(watch)
    with pytest.raises(TypeError):
        listener.add_handler(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        listener.add_handler(print, int)  # type: ignore[type-var]
    with pytest.raises(TypeError):
        Listener(object())  # type: ignore[arg-type]


def test_a_slow_handler_does_not_stop_the_reader_draining(watch: Watch) -> None:
    release = threading.Event()

    def slow(ev: Event) -> None:
        release.wait(5)

    with Listener(watch, slow) as listener:
        post(watch, vm_err(0))
        assert wait_for(lambda: listener.stats().received == 1)
        for _ in range(40):  # 4000 records: far more than the socket buffer holds unread
            post(watch, *(vm_err(i) for i in range(100)))
        assert wait_for(lambda: listener.stats().received == 4001)
        stats = listener.stats()
        assert stats.dispatched == 1 and stats.backlog == 4000
        release.set()
        assert wait_for(lambda: listener.stats().dispatched == 4001)


# --- stop ----------------------------------------------------------------------------------------
def test_stop_wakes_a_blocked_reader_fast(watch: Watch) -> None:
    """stop() returns in < 10 ms while the reader sits in poll() (best of 5)."""
    listener = Listener(watch, lambda ev: None)
    durations = []
    for _ in range(5):
        listener.start()
        post(watch, vm_err(1))
        assert wait_for(lambda: listener.stats().dispatched >= 1)
        time.sleep(0.02)  # the reader is back in poll()
        t0 = time.perf_counter()
        listener.stop()
        durations.append(time.perf_counter() - t0)
        assert not listener.running
    listener.destroy()
    assert min(durations) < 0.010, durations


def test_stop_is_idempotent_and_no_handler_runs_after_it_returns(watch: Watch) -> None:
    calls_after: list[float] = []
    stopped_at: list[float] = []

    def handler(ev: Event) -> None:
        if stopped_at:
            calls_after.append(time.perf_counter())
        time.sleep(0.0005)

    listener = Listener(watch, handler)
    listener.start()
    for _ in range(10):
        post(watch, *(vm_err(i) for i in range(100)))
    assert wait_for(lambda: listener.stats().dispatched > 10)
    listener.stop()
    stopped_at.append(time.perf_counter())
    listener.stop()
    time.sleep(0.05)
    assert calls_after == []
    assert listener.stats().dispatched < 1000  # the backlog was discarded, not drained
    listener.destroy()
    listener.destroy()


def test_stop_from_inside_a_handler(watch: Watch) -> None:
    calls: list[int] = []
    listener = Listener(watch)

    @listener.on(VmError)
    def handler(ev: VmError) -> None:
        calls.append(ev.vm_id)
        if ev.vm_id == 3:
            listener.stop()
            listener.stop()
            with pytest.raises(RuntimeError):
                listener.join()

    listener.start()
    post(watch, *(vm_err(i) for i in range(1, 10)))
    assert listener.join(timeout=5)
    assert calls == [1, 2, 3]
    assert listener.ended_reason == "stopped"
    listener.destroy()


def test_restart_after_stop_continues_from_the_pipe(watch: Watch) -> None:
    got = Collector()
    listener = Listener(watch, got)
    listener.start()
    post(watch, vm_err(1))
    assert wait_for(lambda: len(got.events) == 1)
    listener.stop()
    post(watch, vm_err(2))  # queued in the pipe while stopped
    listener.start()
    assert listener.start() is listener  # no-op while running
    post(watch, vm_err(3))
    assert wait_for(lambda: len(got.events) == 3)
    listener.destroy()
    assert [e.vm_id for e in got.events] == [1, 2, 3]  # type: ignore[attr-defined]
    assert not watch.closed  # a shared watch stays open


def test_join_timeout_and_ended_reason_eof(watch: Watch) -> None:
    listener = Listener.create(watch, lambda ev: None)
    assert listener.running and listener.ended_reason is None
    assert listener.join(timeout=0.05) is False
    watch.close_write_end()  # igt does this; the empty queue then reads EOF
    assert listener.join(timeout=5) is True
    assert listener.ended_reason == EndReason.EOF and not listener.running
    listener.destroy()


def test_closing_a_shared_watch_ends_the_listener_and_then_closes_the_fds(watch: Watch) -> None:
    listener = Listener.create(watch, lambda ev: None)
    fd = watch.read_fd
    time.sleep(0.02)
    watch.close()  # from another thread than the reader: deferred, reader woken
    assert listener.join(timeout=5)
    assert listener.ended_reason == EndReason.CLOSED
    with pytest.raises(OSError):
        os.fstat(fd)
    with pytest.raises(ValueError):
        listener.start()


def test_one_listener_per_watch(watch: Watch) -> None:
    with Listener(watch), pytest.raises(ValueError, match="already has a running listener"):
        Listener(watch).start()


def test_a_blocking_watch_is_refused() -> None:
    w = Watch(RecordSeam(), filters=None, nonblock=False)
    try:
        with pytest.raises(ValueError, match="blocking"):
            Listener(w).start()
    finally:
        w.close()


def test_idle_listener_threads_never_wake(watch: Watch) -> None:
    """Zero wake-ups while idle: no context switch of either thread over 0.5 s."""
    with Listener(watch, lambda ev: None, name="idle") as listener:
        post(watch, vm_err(1))
        assert wait_for(lambda: listener.stats().dispatched == 1)
        time.sleep(0.05)
        tids = [t.native_id for t in threading.enumerate() if t.name.startswith("idle-")]
        assert len(tids) == 2

        def switches() -> int:
            total = 0
            for tid in tids:
                with open(f"/proc/self/task/{tid}/status") as f:
                    for line in f:
                        if "ctxt_switches" in line:
                            total += int(line.split()[1])
            return total

        before = switches()
        time.sleep(0.5)
        assert switches() - before == 0


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_no_thread_or_descriptor_leak_over_1000_cycles(watch: Watch) -> None:
    got = Collector()
    listener = Listener(watch, got)
    listener.start()
    listener.stop()  # the watch's wake-up eventfd now exists
    gc.collect()
    threads, fds = threading.active_count(), _fds()
    t0 = time.monotonic()
    for i in range(1000):
        listener.start()
        if i % 100 == 0:
            post(watch, vm_err(i))
        listener.stop()
    elapsed = time.monotonic() - t0
    gc.collect()
    assert threading.active_count() == threads
    assert _fds() == fds
    assert elapsed < 30
    listener.destroy()


def test_context_manager_on_a_shared_watch_leaves_it_open(watch: Watch) -> None:
    with Listener(watch) as listener:
        assert listener.running
    assert not listener.running and not watch.closed


# --- switch interval -----------------------------------------------------------------------------
def test_switch_interval_lowered_while_running_and_restored(watch: Watch) -> None:
    original = sys.getswitchinterval()
    a = Listener(watch, switch_interval=0.001)
    other = Watch(RecordSeam(), filters=None)
    b = Listener(other)
    try:
        a.start()
        assert sys.getswitchinterval() == pytest.approx(0.001)
        b.start()
        assert sys.getswitchinterval() == pytest.approx(DEFAULT_SWITCH_INTERVAL)
        a.stop()
        assert sys.getswitchinterval() == pytest.approx(DEFAULT_SWITCH_INTERVAL)
        b.stop()
        assert sys.getswitchinterval() == original
        with Listener(watch, switch_interval=None):
            assert sys.getswitchinterval() == original
    finally:
        a.destroy()
        b.destroy()
        other.close()
    assert sys.getswitchinterval() == original
    with pytest.raises(ValueError):
        Listener(watch, switch_interval=0)


# --- fork ------------------------------------------------------------------------------------------
def test_a_listener_inherited_by_fork_refuses_to_start(watch: Watch) -> None:
    listener = Listener.create(watch, lambda ev: None)
    try:
        pid = os.fork()
        if pid == 0:  # child: report through the exit status, never return into pytest
            code = 1
            try:
                listener.stop()  # no threads here: a no-op, must not hang
                try:
                    listener.start()
                except ForkedListenerError as exc:
                    code = 0 if "fork" in str(exc) else 2
                try:
                    next(iter(watch.events(timeout=0)))
                except RuntimeError:
                    pass
                else:
                    code = 3
                listener.destroy()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert listener.running  # the parent's listener is untouched
    finally:
        listener.destroy()


# --- Watch.events() ----------------------------------------------------------------------------------
def test_events_iterator_yields_then_times_out(watch: Watch) -> None:
    post(watch, vm_err(1), LOSS)
    t0 = time.monotonic()
    got = list(watch.events(timeout=0.1))
    assert [type(e) for e in got] == [VmError, Loss]
    assert 0.09 <= time.monotonic() - t0 < 2


def test_events_iterator_ends_when_closed_from_another_thread(watch: Watch) -> None:
    fd = watch.read_fd
    threading.Timer(0.1, watch.close).start()
    t0 = time.monotonic()
    assert list(watch.events()) == []
    assert time.monotonic() - t0 < 2
    with pytest.raises(OSError):
        os.fstat(fd)  # closed by the iterator on its way out


def test_events_iterator_sees_events_as_they_come_and_ends_at_eof(watch: Watch) -> None:
    def writer() -> None:
        for i in range(3):
            time.sleep(0.02)
            post(watch, vm_err(i))
        watch.close_write_end()

    threading.Thread(target=writer).start()
    assert [e.vm_id for e in watch.events(timeout=5)] == [0, 1, 2]  # type: ignore[attr-defined]


def test_events_iterator_ends_after_the_last_subscription_is_removed(watch: Watch) -> None:
    watch.subscriptions.extend([(None, 1), (None, 2)])  # type: ignore[list-item]  # as if subscribe()d twice
    post(watch, vm_err(1, watch_id=1), removal(1))
    t0 = time.monotonic()
    got = []
    for ev in watch.events(timeout=5):
        got.append(ev)
        if len(got) == 2:
            assert not watch.removed
            post(watch, vm_err(2, watch_id=2), removal(2))
    assert got[-1] == Removal(2) and len(got) == 4
    assert watch.removed and watch.subscriptions == []
    assert time.monotonic() - t0 < 2  # ended by the removal, not by the 5 s timeout


def test_events_iterator_on_an_already_removed_watch_ends_at_once(watch: Watch) -> None:
    watch.subscriptions.append((None, 4))  # type: ignore[arg-type]
    post(watch, removal(4))
    assert watch.poll(timeout=1) == [Removal(4)] and watch.removed
    t0 = time.monotonic()
    assert list(watch.events(timeout=5)) == []
    assert time.monotonic() - t0 < 1


def test_close_inside_the_loop(watch: Watch) -> None:
    post(watch, vm_err(1), vm_err(2))
    got = []
    for ev in watch.events(timeout=1):
        got.append(ev)
        watch.close()
    assert len(got) == 2  # already parsed events of that read are still yielded
    assert watch.closed


# --- Watch.aevents() -------------------------------------------------------------------------------
def _registered(loop: asyncio.AbstractEventLoop, fd: int) -> bool:
    return fd in loop._selector.get_map()  # type: ignore[attr-defined]


def test_aevents_iterates_and_times_out(watch: Watch) -> None:
    async def main() -> list[Event]:
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, post, watch, vm_err(1))
        loop.call_later(0.04, post, watch, vm_err(2))
        got = [ev async for ev in watch.aevents(timeout=0.2)]
        assert not _registered(loop, watch.read_fd)
        return got

    assert [e.vm_id for e in asyncio.run(main())] == [1, 2]  # type: ignore[attr-defined]


def test_aevents_cancellation_leaves_no_reader_and_can_start_again(watch: Watch) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def consume(n: int) -> list[Event]:
            out = []
            async for ev in watch.aevents():
                out.append(ev)
                if len(out) == n:
                    break
            return out

        task = asyncio.create_task(consume(1))
        await asyncio.sleep(0.02)
        assert _registered(loop, watch.read_fd)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not _registered(loop, watch.read_fd)
        assert watch._blocked == 0
        post(watch, vm_err(7))  # a late readiness must not hit the cancelled future
        await asyncio.sleep(0.02)
        got = await asyncio.wait_for(consume(1), 2)  # evdev #103: re-entry after cancel
        assert [e.vm_id for e in got] == [7]  # type: ignore[attr-defined]

    asyncio.run(main())


def test_aevents_ends_when_the_watch_is_closed(watch: Watch) -> None:
    fd = watch.read_fd

    async def main() -> list[Event]:
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, post, watch, vm_err(1))
        loop.call_later(0.05, watch.close)
        got = [ev async for ev in watch.aevents()]
        assert not _registered(loop, fd)
        return got

    assert [type(e) for e in asyncio.run(asyncio.wait_for(main(), 5))] == [VmError]
    with pytest.raises(OSError):
        os.fstat(fd)


def test_aevents_closed_from_another_thread(watch: Watch) -> None:
    async def main() -> list[Event]:
        threading.Timer(0.05, watch.close).start()
        return [ev async for ev in watch.aevents()]

    assert asyncio.run(asyncio.wait_for(main(), 5)) == []
