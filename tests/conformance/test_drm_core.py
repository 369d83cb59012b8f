"""Spec 2: DRM core dispatch, DRM_IOCTL_VERSION and DRM_IOCTL_GEM_CLOSE, with raw bytes.

Rows: type != 'd' -> ENOTTY; driver nr past the table -> EINVAL; core nr without a
handler -> EINVAL; short user struct zero-extended; copy-in fault -> EFAULT; copy-back
on failure; failed copy-back -> EFAULT; VERSION len/copy protocol; GEM_CLOSE.
(Wedged/unplugged: tests/fake/test_drm_state.py.)
"""

from __future__ import annotations

import errno
import struct

import pytest
import rawabi as abi
from rawabi import RawClient, UserMem, call, u32, u64


def test_non_drm_type_is_enotty(xe_backend, xe_file):
    # 'W' (a watch-queue ioctl) and an arbitrary 'x' request on a DRM fd
    assert call(xe_backend, xe_file, 0x00005760, 1) == errno.ENOTTY
    assert call(xe_backend, xe_file, 0xC0207800, bytearray(32)) == errno.ENOTTY


@pytest.mark.parametrize("nr", [0x52, 0x5F, 0x9F])
def test_driver_number_past_table_is_einval(xe_backend, xe_file, nr):
    # 0x40 + 0x12 is the first number past VM_RESTART/WATCH_QUEUE
    assert call(xe_backend, xe_file, 0xC0206400 | nr, bytearray(32)) == errno.EINVAL


@pytest.mark.parametrize("nr", [0xFF, 0xF0])
def test_core_number_past_table_is_einval(xe_backend, xe_file, nr):
    assert call(xe_backend, xe_file, 0xC0106400 | nr, bytearray(16)) == errno.EINVAL


def test_new_ioctls_present(xe_backend, xe_file):
    """0x10 and 0x11 exist: their argument checks answer, not the dispatcher's EINVAL."""
    assert call(xe_backend, xe_file, abi.VM_RESTART, abi.vm_restart(0xFFFF)) == errno.ENOENT
    assert call(xe_backend, xe_file, abi.WATCH_QUEUE, abi.watch_queue(0, watch_id=0x100)) == errno.EINVAL


def test_short_user_struct_reads_zero_extended(xe_backend, xe_file):
    """A VM_CREATE with a 16-byte user size: the reserved tail reads as zero, so it succeeds."""
    short = _IOC(3, 0x43, 16)
    buf = abi.vm_create(abi.LR_MODE)[:16]
    assert call(xe_backend, xe_file, short, buf) == 0
    assert u32(buf, 12) >= 1  # vm_id copied back within the user's 16 bytes


def test_longer_user_struct_copies_user_size(xe_backend, xe_file):
    """User size 40 > table size 32: 40 bytes in, the handler sees 32, 40 bytes back (tail unchanged)."""
    long = _IOC(3, 0x43, 40)
    buf = abi.vm_create(0) + struct.pack("<Q", 0x1122334455667788)
    assert call(xe_backend, xe_file, long, buf) == 0
    assert u64(buf, 32) == 0x1122334455667788


def test_copy_in_fault_is_efault(xe_backend, xe_file):
    assert call(xe_backend, xe_file, abi.VM_CREATE, abi.BAD_PTR) == errno.EFAULT
    assert call(xe_backend, xe_file, abi.VM_CREATE, 0) == errno.EFAULT


def test_iow_with_bad_pointer_is_efault(xe_backend, xe_file):
    assert call(xe_backend, xe_file, abi.VM_DESTROY, abi.BAD_PTR) == errno.EFAULT


def test_copy_back_on_failure(xe_backend, xe_file):
    """VERSION with a bad name pointer fails EFAULT, yet the numbers and name_len come back."""
    buf = abi.drm_version(name_len=1, name=abi.BAD_PTR)
    assert call(xe_backend, xe_file, abi.DRM_IOCTL_VERSION, buf) == errno.EFAULT
    major, minor, patch = struct.unpack_from("<iii", buf)
    assert (major, minor, patch) == (1, 1, 0)
    assert u64(buf, 16) == 2  # strlen("xe") written back although the call failed
    assert u64(buf, 32) == 0  # date_len untouched: the copy stopped at the name


def test_failed_copy_back_is_efault(xe_backend, xe_file):
    """The struct is readable but not writable: the handler succeeds, the copy-back faults."""
    addr, libc = abi.readonly_page()
    try:
        assert call(xe_backend, xe_file, abi.DRM_IOCTL_VERSION, addr) == errno.EFAULT
    finally:
        libc.munmap(addr, abi.PAGE)


def test_version_lengths_only(xe_backend, xe_file):
    buf = abi.drm_version()
    assert call(xe_backend, xe_file, abi.DRM_IOCTL_VERSION, buf) == 0
    assert struct.unpack_from("<iii", buf) == (1, 1, 0)
    assert (u64(buf, 16), u64(buf, 32), u64(buf, 48)) == (2, 1, len("Intel Xe Graphics"))


def test_version_null_buffers_with_length_report_length(xe_backend, xe_file):
    buf = abi.drm_version(name_len=64, date_len=64, desc_len=64)
    assert call(xe_backend, xe_file, abi.DRM_IOCTL_VERSION, buf) == 0
    assert (u64(buf, 16), u64(buf, 32), u64(buf, 48)) == (2, 1, 17)


def test_version_copies_min_len_without_nul(xe_backend, xe_file):
    name, date, desc = UserMem(b"\xaa" * 8), UserMem(b"\xaa" * 8), UserMem(b"\xaa" * 32)
    buf = abi.drm_version(8, name.addr, 8, date.addr, 32, desc.addr)
    assert call(xe_backend, xe_file, abi.DRM_IOCTL_VERSION, buf) == 0
    assert bytes(name.buf) == b"xe" + b"\xaa" * 6
    assert bytes(date.buf) == b"0" + b"\xaa" * 7
    assert bytes(desc.buf) == b"Intel Xe Graphics" + b"\xaa" * 15


def test_version_truncates_to_len(xe_backend, xe_file):
    desc = UserMem(b"\xaa" * 8)
    buf = abi.drm_version(desc_len=5, desc=desc.addr)
    assert call(xe_backend, xe_file, abi.DRM_IOCTL_VERSION, buf) == 0
    assert bytes(desc.buf) == b"Intel" + b"\xaa" * 3
    assert u64(buf, 48) == 17


def test_version_by_pointer(xe_backend, xe_file):
    mem = UserMem(abi.drm_version())
    assert call(xe_backend, xe_file, abi.DRM_IOCTL_VERSION, mem.addr) == 0
    assert u64(mem.buf, 16) == 2


def test_gem_close_unknown_handle_is_einval(xe_backend, xe_file):
    assert call(xe_backend, xe_file, abi.DRM_IOCTL_GEM_CLOSE, abi.gem_close(0x7777)) == errno.EINVAL
    assert call(xe_backend, xe_file, abi.DRM_IOCTL_GEM_CLOSE, abi.gem_close(0)) == errno.EINVAL


def test_gem_close_then_again(xe_backend, xe_file):
    c = RawClient(xe_backend, xe_file)
    handle = c.bo()
    assert c.call(abi.DRM_IOCTL_GEM_CLOSE, abi.gem_close(handle, pad=0xDEAD)) == 0  # pad is not checked
    assert c.call(abi.DRM_IOCTL_GEM_CLOSE, abi.gem_close(handle)) == errno.EINVAL


def test_handles_and_ids_start_at_one_per_file(xe_backend, xe_node):
    import os

    fds = [xe_backend.open(xe_node, os.O_RDWR | os.O_CLOEXEC) for _ in range(2)]
    try:
        for fd in fds:
            c = RawClient(xe_backend, fd)
            assert c.vm() == 1
            assert c.bo() == 1
            assert c.queue(1, *c.exec_engine()) == 1
    finally:
        for fd in fds:
            xe_backend.close(fd)


def _IOC(direction: int, nr: int, size: int) -> int:
    return direction << 30 | size << 16 | ord("d") << 8 | nr
