"""Structural guards for the fake's hot paths (no timing asserts: the machine is shared).

Each test pins down *how much work* a hot path does -- how many token syscalls a post or a
read makes, whether an id allocation or a bind scans a whole table -- and checks the faster
path against a plain reference implementation of the same rule on random operation sequences:

* ``XArray`` / ``xa_alloc``: the lowest free id >= 1 (XA_FLAGS_ALLOC1), without a scan from 1;
* ``_remove_range`` + VMA insertion: bisection on the sorted VMA list, same result as the
  re-sort of every VMA the model used to do;
* the notification pipe: one token write per post into an empty ring and none otherwise, one
  token drain per read that empties it, no poll object per read, F_GETFL only for the
  -EAGAIN/block decision -- and the readiness invariant after every step;
* ``WatchFilter``: its per-type data is built once, and it decides like §1.5 says;
* ``drm_ioctl``: a cmd value is resolved once; copy-in/copy-back over every kind of argument;
* the VRAM LRU: O(1) removal and move-to-end, oldest first.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import random
import select
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from xeclient import Device
from xeclient.backends.fake import FakeBackend, drm_ioctl, watch_queue, xe_vm
from xeclient.backends.fake.watch_queue import TypeFilter, WatchFilter, WatchQueue
from xeclient.backends.fake.xe_device import XArray, XeFile, xa_alloc
from xeclient.uapi import ffi
from xeclient.uapi.requests import DRM_IOCTL_XE_VM_CREATE, DRM_IOCTL_XE_VM_DESTROY

O_NOTIFICATION_PIPE = 0x80
SET_SIZE = 0x5760
KEY = 1
PAGE = 4096


def _lowest_free(table: dict[int, Any]) -> int:
    i = 1
    while i in table:
        i += 1
    return i


def _fake(device: Device) -> FakeBackend:
    backend = device.backend
    assert isinstance(backend, FakeBackend)
    return backend


# --- xa_alloc -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_xarray_allocates_the_lowest_free_id(seed: int) -> None:
    rng = random.Random(seed)
    table: XArray[int] = XArray()
    ref: dict[int, int] = {}
    for step in range(2000):
        r = rng.random()
        if r < 0.45:
            i = xa_alloc(table)
            assert i == _lowest_free(ref), step
            table[i] = ref[i] = step
        elif r < 0.6 and ref:
            k = rng.choice(list(ref))
            del table[k]
            del ref[k]
        elif r < 0.7 and ref:
            k = rng.choice(list(ref))
            assert table.pop(k) == ref.pop(k)
        elif r < 0.75:
            k = rng.randint(1, 400)
            assert table.pop(k, None) == ref.pop(k, None)
        elif r < 0.78:
            k = rng.randint(1, 500)  # an id stored without alloc()
            table[k] = ref[k] = step
        elif r < 0.8 and ref:
            assert table.popitem() == ref.popitem()
        elif r < 0.81:
            table.clear()
            ref.clear()
        else:
            assert xa_alloc(table) == _lowest_free(ref)  # asked, not stored
        assert table == ref


class _CountingXArray(XArray[int]):
    probes = 0

    def __contains__(self, key: object) -> bool:
        type(self).probes += 1
        return super().__contains__(key)


def test_xa_alloc_does_not_scan_from_one() -> None:
    table = _CountingXArray()
    for _ in range(5000):
        table[xa_alloc(table)] = 0
    _CountingXArray.probes = 0
    assert xa_alloc(table) == 5001
    assert _CountingXArray.probes <= 3
    del table[17]
    del table[4000]
    _CountingXArray.probes = 0
    assert xa_alloc(table) == 17  # a freed id is reused first, lowest first
    table[17] = 0
    assert xa_alloc(table) == 4000
    assert _CountingXArray.probes <= 10


def test_drm_file_tables_are_xarrays(fake_client: Device) -> None:
    xef = _fake(fake_client).lookup(fake_client.fd)
    assert isinstance(xef, XeFile)
    assert all(isinstance(t, XArray) for t in (xef.vms, xef.bos, xef.exec_queues))
    vms = [fake_client.create_vm() for _ in range(4)]
    vms[1].destroy()
    assert fake_client.create_vm().id == vms[1].id  # XA_FLAGS_ALLOC1: the freed id comes back


# --- VMAs ----------------------------------------------------------------------------------------------
Vma = tuple[int, int, int, int, int]  # addr, range, bo handle (0: none), obj_offset, userptr


def _ref_remove(vmas: list[Vma], start: int, end: int) -> list[Vma]:
    """The model's former _remove_range: scan everything, split, re-sort."""
    keep: list[Vma] = []
    for addr, rng, bo, off, uptr in vmas:
        vend = addr + rng
        if vend <= start or addr >= end:
            keep.append((addr, rng, bo, off, uptr))
            continue
        if addr < start:
            keep.append((addr, start - addr, bo, off, uptr))
        if vend > end:
            delta = end - addr
            keep.append((end, vend - end, bo, off + delta if bo else 0, uptr + delta if uptr else 0))
    return sorted(keep)


def _fake_vmas(vm: Any) -> list[Vma]:
    handles = {id(bo): h for h, bo in vm.xef.bos.items()}
    return [(v.addr, v.range, handles[id(v.bo)] if v.bo else 0, v.obj_offset, v.userptr) for v in vm.vmas]


@pytest.fixture
def userptr_area() -> Iterator[int]:
    import ctypes

    area = mmap.mmap(-1, 64 * PAGE)
    holder = ctypes.c_char.from_buffer(area)
    try:
        yield ctypes.addressof(holder)
    finally:
        del holder
        area.close()


@pytest.mark.parametrize("seed", range(4))
def test_bind_unbind_matches_the_resorting_model(fake_client: Device, userptr_area: int, seed: int) -> None:
    rng = random.Random(seed)
    vm = fake_client.create_vm()
    fake_vm = _fake(fake_client).device.lookup_vm(fake_client.fd, vm.id)
    bos = [fake_client.create_bo(8 * PAGE, "sysmem") for _ in range(6)]
    ref: list[Vma] = []
    base = 0x100000
    for _ in range(300):
        addr = base + rng.randrange(64) * PAGE
        size = rng.randrange(1, 9) * PAGE
        r = rng.random()
        if r < 0.5:
            bo = rng.choice(bos)
            off = rng.randrange(0, 8 * PAGE - size + 1, PAGE)
            vm.bind(bo, addr, offset=off, range=size)
            ref = _ref_remove(ref, addr, addr + size)
            ref = sorted([*ref, (addr, size, bo.handle, off, 0)])
        elif r < 0.65:
            uptr = userptr_area + rng.randrange(0, 64 * PAGE - size + 1, PAGE)
            vm.bind_userptr(uptr, addr, size)
            ref = _ref_remove(ref, addr, addr + size)
            ref = sorted([*ref, (addr, size, 0, 0, uptr)])
        elif r < 0.9:
            vm.unbind(addr, size)
            ref = _ref_remove(ref, addr, addr + size)
        else:
            bo = rng.choice(bos)
            vm.unbind_all(bo)
            ref = [v for v in ref if v[2] != bo.handle]
        assert _fake_vmas(fake_vm) == ref
        for bo in bos:  # one reference for the handle, one per VMA
            fbo = fake_vm.xef.bos[bo.handle]
            assert fbo.refcount == 1 + sum(1 for v in fake_vm.vmas if v.bo is fbo)


class _NoScanList(list):  # type: ignore[type-arg]
    def __iter__(self) -> Any:
        raise AssertionError("a bind walked every VMA of the VM")


def test_binding_does_not_walk_every_vma(fake_client: Device) -> None:
    vm = fake_client.create_vm()
    bos = [fake_client.create_bo(PAGE, "sysmem") for _ in range(50)]
    for i, bo in enumerate(bos):
        vm.bind(bo, 0x100000 + i * 0x10000)
    fake_vm = _fake(fake_client).device.lookup_vm(fake_client.fd, vm.id)
    fake_vm.vmas = _NoScanList(fake_vm.vmas)
    extra = fake_client.create_bo(PAGE, "sysmem")
    vm.bind(extra, 0x100000 + 25 * 0x10000 + PAGE)  # between two VMAs
    vm.bind(extra, 0x100000 + 10 * 0x10000)  # replaces one
    vm.unbind(0x100000 + 30 * 0x10000, PAGE)
    fake_vm.vmas = list(list.__iter__(fake_vm.vmas))  # closing the VM walks them all, rightly
    addrs = [v.addr for v in fake_vm.vmas]
    assert addrs == sorted(addrs) and len(addrs) == 50


# --- notification pipes ---------------------------------------------------------------------------------
class _Counter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = {}
        for name in ("_write_token", "_drain_token"):
            self._wrap(monkeypatch, WatchQueue, name)
        real_fcntl = fcntl.fcntl
        real_poll = select.poll

        def fcntl_(fd: int, cmd: int, *args: Any) -> Any:
            self.calls[f"fcntl{cmd}"] = self.calls.get(f"fcntl{cmd}", 0) + 1
            return real_fcntl(fd, cmd, *args)

        def poll_() -> Any:
            self.calls["poll"] = self.calls.get("poll", 0) + 1
            return real_poll()

        monkeypatch.setattr(fcntl, "fcntl", fcntl_)
        monkeypatch.setattr(select, "poll", poll_)

    def _wrap(self, monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> None:
        real = getattr(cls, name)

        def wrapper(q: WatchQueue) -> None:
            self.calls[name] = self.calls.get(name, 0) + 1
            real(q)

        monkeypatch.setattr(cls, name, wrapper)

    def take(self) -> dict[str, int]:
        calls, self.calls = self.calls, {}
        return calls


_poll = select.poll  # the tests' own, not counted


def _readable(fd: int) -> bool:
    """POLLIN on the real pipe (POLLHUP, once the write end is closed, does not count)."""
    p = _poll()
    p.register(fd, select.POLLIN)
    return any(ev & select.POLLIN for _, ev in p.poll(0))


def test_post_and_read_make_the_minimum_of_token_syscalls(
    fake_backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    r, w = fake_backend.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC | os.O_NONBLOCK)
    fake_backend.ioctl(r, SET_SIZE, 64)
    src = fake_backend.watch_source(5)
    src.add_watch(r, 1)
    q = watch_queue.get_watch_queue(fake_backend, r)
    assert isinstance(q, WatchQueue)
    count = _Counter(monkeypatch)
    rec = struct.pack("<II", 1, 0)

    src.post(KEY, 2, rec)  # into an empty ring: one token write
    assert count.take() == {"_write_token": 1}
    assert _readable(r)
    for _ in range(3):  # into a non-empty ring: nothing
        src.post(KEY, 2, rec)
    assert count.take() == {}

    assert len(fake_backend.read(r, 16 * 2)) == 32  # leaves records: no token work
    assert count.take() == {}
    assert _readable(r)
    assert len(fake_backend.read(r, 4096)) == 32  # empties the ring: one drain, no poll object
    assert count.take() == {"_drain_token": 1}
    assert not _readable(r)

    with pytest.raises(OSError) as info:  # nothing queued: F_GETFL once, no token work
        fake_backend.read(r, 4096)
    assert info.value.errno == errno.EAGAIN
    assert count.take() == {f"fcntl{fcntl.F_GETFL}": 1}
    assert not _readable(r)
    fake_backend.close(r)
    fake_backend.close(w)


def test_token_syscalls_hold_to_the_readiness_invariant(fake_backend: FakeBackend) -> None:
    """Random posts/reads (and the write end closing): the real pipe is readable exactly when the
    ring holds records, whichever way the token goes (GIL-holding calls or os.*)."""
    for use_os in (False, True):
        r, w = fake_backend.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC | os.O_NONBLOCK)
        fake_backend.ioctl(r, SET_SIZE, 32)
        q = watch_queue.get_watch_queue(fake_backend, r)
        assert isinstance(q, WatchQueue)
        if use_os:
            q._token_write = q._token_read = None
        src = fake_backend.watch_source(9)
        src.add_watch(r, 3)
        rng = random.Random(7)
        for step in range(400):
            if step == 300:
                fake_backend.close(w)  # the token now goes through the /proc reopen
            x = rng.random()
            if x < 0.5:
                for _ in range(rng.randrange(1, 40)):
                    src.post(KEY, 2, struct.pack("<II", step, 0))
            else:
                try:
                    fake_backend.read(r, rng.choice((16, 40, 4096)))
                except OSError as exc:
                    assert exc.errno in (errno.EAGAIN, errno.ENOBUFS)
            assert _readable(r) == bool(q.ring), step
            assert q._token == bool(q.ring)
        fake_backend.close(r)


def test_gil_holding_token_calls_are_used_where_the_kernel_can(fake_backend: FakeBackend) -> None:
    r, w = fake_backend.pipe2(O_NOTIFICATION_PIPE | os.O_CLOEXEC)
    q = watch_queue.get_watch_queue(fake_backend, r)
    assert isinstance(q, WatchQueue)
    calls = watch_queue._token_syscalls()
    assert calls is watch_queue._token_syscalls()  # probed once
    assert (q._token_write is None) == (q._token_read is None) == (calls is None)
    if calls is not None:  # Linux >= 5.x: RWF_NOWAIT on a pipe, whatever O_NONBLOCK says
        read = calls.reader(r)
        assert read() == -1  # a blocking descriptor, nothing in it, and it did not block
        assert calls.writer(w)() == 1
        assert read() == 1
    fake_backend.close(r)
    fake_backend.close(w)


# --- filters ------------------------------------------------------------------------------------------
def _ref_matches(filters: tuple[TypeFilter, ...], type: int, subtype: int, info: int) -> bool:
    if type not in {f.type for f in filters} or subtype >= 32:
        return False
    return any(
        f.type == type and f.subtype_filter0 & (1 << subtype) and (info & f.info_mask) == f.info_filter for f in filters
    )


def test_watch_filter_is_built_once_and_decides_like_the_rule() -> None:
    rng = random.Random(3)
    for _ in range(200):
        filters = tuple(
            TypeFilter(rng.randrange(4), rng.choice((0, 0x100, 0x200)), rng.choice((0, 0xFF00)), rng.getrandbits(32))
            for _ in range(rng.randrange(0, 5))
        )
        wf = WatchFilter(filters)
        assert wf.type_filter is wf.type_filter  # cached, not rebuilt per record
        assert wf.type_filter == frozenset(f.type for f in filters)
        assert wf == WatchFilter(filters)  # the cache takes no part in equality
        for _ in range(20):
            t, st, info = rng.randrange(5), rng.randrange(40), rng.getrandbits(32)
            assert wf.matches(t, st, info) == _ref_matches(filters, t, st, info)


# --- drm_ioctl ----------------------------------------------------------------------------------------
def test_a_cmd_is_resolved_once(fake_client: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_client.create_vm().destroy()
    cached = drm_ioctl._RESOLVED[DRM_IOCTL_XE_VM_CREATE]
    fake_client.create_vm().destroy()
    assert drm_ioctl._RESOLVED[DRM_IOCTL_XE_VM_CREATE] is cached
    assert drm_ioctl.ioctl_tables() is drm_ioctl.ioctl_tables()
    monkeypatch.setattr(drm_ioctl, "_TABLES", None)  # a rebuilt table voids what was read from it
    fake_client.create_vm().destroy()
    assert drm_ioctl._RESOLVED[DRM_IOCTL_XE_VM_CREATE] is not cached
    assert drm_ioctl._RESOLVED[DRM_IOCTL_XE_VM_CREATE].tables is drm_ioctl._TABLES


def test_copy_in_and_copy_back_over_every_argument_kind(fake_backend: FakeBackend) -> None:
    fd = fake_backend.open(fake_backend.render_nodes()[0], os.O_RDWR | os.O_CLOEXEC)
    size = ffi.sizeof("struct drm_xe_vm_create")
    made: list[int] = []

    def vm_id_of(raw: bytes | bytearray | memoryview) -> int:
        return int(struct.unpack_from("<I", raw, 12)[0])  # extensions u64, flags u32, vm_id u32

    cdata = ffi.new("struct drm_xe_vm_create *")
    for arg in (bytearray(size), ffi.buffer(cdata), memoryview(bytearray(size)), bytearray(size + 8)):
        assert fake_backend.ioctl(fd, DRM_IOCTL_XE_VM_CREATE, arg) == 0
        made.append(vm_id_of(arg))
    ptr = ffi.new("struct drm_xe_vm_create *")
    assert fake_backend.ioctl(fd, DRM_IOCTL_XE_VM_CREATE, int(ffi.cast("uintptr_t", ptr))) == 0
    made.append(int(ptr.vm_id))
    assert made == [1, 2, 3, 4, 5]

    for short in (bytearray(size - 1), ffi.buffer(ffi.new("char[]", size - 1))):
        with pytest.raises(OSError) as info:
            fake_backend.ioctl(fd, DRM_IOCTL_XE_VM_CREATE, short)
        assert info.value.errno == errno.EFAULT
    with pytest.raises(OSError) as info:  # read-only: copied in, the VM made, the copy-back faults
        fake_backend.ioctl(fd, DRM_IOCTL_XE_VM_CREATE, bytes(size))
    assert info.value.errno == errno.EFAULT
    xef = fake_backend.lookup(fd)
    assert isinstance(xef, XeFile) and sorted(xef.vms) == [1, 2, 3, 4, 5, 6]

    destroy = bytearray(ffi.sizeof("struct drm_xe_vm_destroy"))  # IOW: nothing copied back
    struct.pack_into("<I", destroy, 0, 6)
    before = bytes(destroy)
    assert fake_backend.ioctl(fd, DRM_IOCTL_XE_VM_DESTROY, destroy) == 0
    assert bytes(destroy) == before and 6 not in xef.vms
    fake_backend.close(fd)


# --- the VRAM LRU -------------------------------------------------------------------------------------
def test_lru_is_ordered_and_moves_a_revalidated_bo_to_the_end(fake_client: Device) -> None:
    vram = _fake(fake_client).device.regions[1]
    vm = fake_client.create_vm()
    bos = [fake_client.create_bo(64 << 10, "vram") for _ in range(4)]
    for i, bo in enumerate(bos):
        vm.bind(bo, 0x100000 + i * 0x100000)
    xef = _fake(fake_client).lookup(fake_client.fd)
    assert isinstance(xef, XeFile)
    fake = [xef.bos[bo.handle] for bo in bos]
    assert list(vram.lru) == fake
    vm.bind(bos[1], 0x800000)  # validated again: most recently used
    assert list(vram.lru) == [fake[0], fake[2], fake[3], fake[1]]
    vm.unbind_all(bos[2])
    bos[2].close()  # last reference: backing freed, out of the LRU
    assert list(vram.lru) == [fake[0], fake[3], fake[1]]
    assert vram.used == 3 * (64 << 10)


def test_bind_op_args_keep_their_fields() -> None:
    raw = struct.pack("<QIHHQQQIIII", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    op = xe_vm.BindOpArgs.unpack(raw)
    assert (op.extensions, op.obj, op.pat_index, op.pad, op.obj_offset, op.range, op.addr) == (1, 2, 3, 4, 5, 6, 7)
    assert (op.op, op.flags, op.prefetch_mem_region_instance, op.pad2) == (8, 9, 10, 11)
