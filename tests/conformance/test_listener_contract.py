"""The listener contract, on whichever backend the session runs (fake or a real Xe kernel)."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from collections.abc import Callable

import pytest

from xeclient import Device
from xeclient.backends import Backend
from xeclient.events import Event, Removal, VmError
from xeclient.listener import EndReason, Listener
from xeclient.pytest_plugin import XE_WATCH_ID, ListenerProbe, RebindTrigger
from xeclient.vm import Vm
from xeclient.watch import Watch


def test_vm_error_reaches_the_listener(
    xe_listener: ListenerProbe, busy_vm: Vm, trigger_rebind: RebindTrigger, inject_enospc: Callable[..., None]
) -> None:
    inject_enospc()
    t0 = time.monotonic_ns()
    trigger_rebind(busy_vm)
    ev = xe_listener.wait_for(VmError)
    assert ev.vm_id == busy_vm.id and ev.errno == errno.ENOSPC and ev.error_code == -errno.ENOSPC
    assert ev.watch_id == XE_WATCH_ID
    assert ev.timestamp_ns == 0 or t0 <= ev.timestamp_ns <= time.monotonic_ns()
    busy_vm.restart(timestamp_ns=ev.timestamp_ns)
    stats = xe_listener.listener.stats()
    assert stats.by_type.get("vm_error") == 1 and stats.errors == 0


def test_restart_from_the_handler(
    xe_client: Device, xe_watch: Watch, busy_vm: Vm, trigger_rebind: RebindTrigger, inject_enospc: Callable[..., None]
) -> None:
    restarted = threading.Event()
    errors: list[BaseException] = []
    listener = Listener(xe_watch, on_error=lambda exc, ev: errors.append(exc))

    @listener.on(VmError)
    def on_vm_error(ev: VmError) -> None:
        xe_client.vms[ev.vm_id].restart(timestamp_ns=ev.timestamp_ns)
        restarted.set()

    with listener:
        inject_enospc()
        trigger_rebind(busy_vm)
        assert restarted.wait(5), listener.stats()
    assert errors == []


def test_closing_the_device_ends_the_listener_with_a_removal(xe_backend: Backend, xe_node: str) -> None:
    device = Device.open(xe_node, backend=xe_backend)
    seen: list[Event] = []
    listener = Listener.create(device, seen.append, watch_id=9)
    try:
        device.close()
        assert listener.join(timeout=5), "no REMOVAL within 5 s of closing the DRM file"
        assert listener.ended_reason == EndReason.REMOVED
        assert seen == [Removal(9)]
    finally:
        listener.destroy()


def test_stop_returns_fast_while_the_reader_is_blocked(xe_client: Device) -> None:
    listener = Listener(xe_client, lambda ev: None)
    durations = []
    try:
        for _ in range(5):
            listener.start()
            time.sleep(0.02)
            t0 = time.perf_counter()
            listener.stop()
            durations.append(time.perf_counter() - t0)
            assert listener.ended_reason == EndReason.STOPPED
    finally:
        listener.destroy()
    assert min(durations) < 0.010, durations


def test_idle_iterator_times_out(xe_watch: Watch) -> None:
    t0 = time.monotonic()
    assert list(xe_watch.events(timeout=0.1)) == []
    assert time.monotonic() - t0 >= 0.09


def test_iterator_ends_when_the_watch_is_closed_from_another_thread(xe_client: Device) -> None:
    watch = xe_client.watch(watch_id=2)
    fd = watch.read_fd
    threading.Timer(0.05, watch.close).start()
    assert list(watch.events(timeout=5)) == []
    with pytest.raises(OSError):
        os.fstat(fd)


def test_async_iteration_cancel_and_close(xe_watch: Watch) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def first() -> Event:
            async for ev in xe_watch.aevents():
                return ev
            raise AssertionError("ended")

        task = asyncio.create_task(first())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert xe_watch.read_fd not in loop._selector.get_map()  # type: ignore[attr-defined]
        assert [ev async for ev in xe_watch.aevents(timeout=0.05)] == []

    asyncio.run(asyncio.wait_for(main(), 10))
