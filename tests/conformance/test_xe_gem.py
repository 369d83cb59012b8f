"""Spec 5.5 (GEM_CREATE) and GEM_MMAP_OFFSET, with raw bytes through the seam.

Not reachable by construction: row 6 (size > SIZE_MAX, a u64 on a 64-bit kernel) and
row 8 (NO_COMPRESSION: its bit is unknown, so it is an unknown flag, row 3).
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator

import pytest
import rawabi as abi
from rawabi import RawClient, UserMem, u32, u64

SZ = 64 * 1024


@pytest.fixture
def c(xe_backend, xe_file, xe_node) -> Iterator[RawClient]:
    client = RawClient(xe_backend, xe_file, xe_node, check_jobs=True)
    yield client
    client.close()


def create(c: RawClient, size: int = SZ, placement: int = 1, cpu_caching: int = abi.WB, **kw) -> tuple[int, bytearray]:
    a = abi.gem_create(size, placement, cpu_caching, **kw)
    return c.call(abi.GEM_CREATE, a), a


def vram(c: RawClient) -> int:
    mask = c.vram_mask()
    if not mask:
        pytest.skip("integrated device: no VRAM region")
    return mask & -mask


@pytest.mark.parametrize("kw", [{"pad": (1, 0, 0)}, {"pad": (0, 0, 1)}, {"reserved": (1, 0)}, {"reserved": (0, 1)}])
def test_row1_pad_reserved(c, kw):
    assert create(c, **kw)[0] == errno.EINVAL


@pytest.mark.parametrize("placement", [0, 1 << 7, 1 << 31])
def test_row2_placement(c, placement):
    assert create(c, placement=placement)[0] == errno.EINVAL


def test_row2_placement_outside_mask(c):
    regions = len(c.mem_regions())
    assert create(c, placement=1 << regions)[0] == errno.EINVAL


@pytest.mark.parametrize("flags", [1 << 3, 1 << 8, 1 << 31])
def test_row3_unknown_flags(c, flags):
    assert create(c, flags=flags)[0] == errno.EINVAL


def test_row4_handle_nonzero(c):
    assert create(c, handle=5)[0] == errno.EINVAL


def test_row5_size_zero(c):
    assert create(c, size=0)[0] == errno.EINVAL


@pytest.mark.parametrize("size", [1, 4095, 4097, SZ + 512])
def test_row7_size_not_page_multiple(c, size):
    assert create(c, size=size)[0] == errno.EINVAL


def test_row9_needs_visible_vram_without_vram(c):
    assert create(c, flags=abi.NEEDS_VISIBLE_VRAM)[0] == errno.EINVAL


def test_row9_needs_visible_vram_with_vram_ok(c):
    assert create(c, placement=vram(c), cpu_caching=abi.WC, flags=abi.NEEDS_VISIBLE_VRAM)[0] == 0


@pytest.mark.parametrize("caching", [0, 3, 0xFFFF])
def test_row10_cpu_caching(c, caching):
    assert create(c, cpu_caching=caching)[0] == errno.EINVAL


def test_row11_vram_needs_wc(c):
    assert create(c, placement=vram(c), cpu_caching=abi.WB)[0] == errno.EINVAL
    assert create(c, placement=vram(c) | 1, cpu_caching=abi.WB)[0] == errno.EINVAL


def test_row12_scanout_with_wb(c):
    assert create(c, flags=abi.SCANOUT, cpu_caching=abi.WB)[0] == errno.EINVAL
    assert create(c, flags=abi.SCANOUT, cpu_caching=abi.WC)[0] == 0


@pytest.mark.parametrize("vm_id", [1, 99])
def test_row13_unknown_vm(c, vm_id):
    assert create(c, vm_id=vm_id)[0] == errno.ENOENT


def test_row13_vm_private_bo(c):
    vm = c.vm()
    err, a = create(c, vm_id=vm)
    assert err == 0 and u32(a, 28) == 1


def test_row15_extensions_after_creation(c):
    # a bad extension pointer is only looked at after every other check
    assert create(c, size=0, extensions=abi.BAD_PTR)[0] == errno.EINVAL
    assert create(c, vm_id=42, extensions=abi.BAD_PTR)[0] == errno.ENOENT
    err, a = create(c, extensions=abi.BAD_PTR)
    assert err == errno.EFAULT
    assert u32(a, 28) == 0  # no handle handed out
    assert c.bo() == 1  # and none leaked: the next handle is 1


def _ext(name: int = 0, prop: int = 0, value: int = 0, next_ext: int = 0, pad: int = 0, reserved: int = 0) -> UserMem:
    return UserMem(struct.pack("<QIIIIQQQ", next_ext, name, 0, prop, pad, value, reserved, 0))


def test_row15_extension_checks(c):
    for kw in ({"name": 1}, {"prop": 1}, {"pad": 1}, {"reserved": 1}, {"value": 7}):
        ext = _ext(**kw)
        assert create(c, extensions=ext.addr)[0] == errno.EINVAL, kw
    ext = _ext(value=0)
    assert create(c, extensions=ext.addr)[0] == 0  # PXP type NONE


def test_row15_more_than_16_extensions_e2big(c):
    exts: list[UserMem] = []
    nxt = 0
    for _ in range(17):
        exts.append(_ext(next_ext=nxt))
        nxt = exts[-1].addr
    assert create(c, extensions=nxt)[0] == errno.E2BIG
    assert create(c, extensions=exts[-2].addr)[0] == 0  # 16 is fine


def test_row16_handles_from_one(c):
    handles = [u32(create(c)[1], 28) for _ in range(3)]
    assert handles == [1, 2, 3]
    assert c.call(abi.DRM_IOCTL_GEM_CLOSE, abi.gem_close(2)) == 0
    assert u32(create(c)[1], 28) == 2


def test_vram_bo_ok(c):
    err, a = create(c, placement=vram(c), cpu_caching=abi.WC)
    assert err == 0 and u32(a, 28) >= 1


# --- GEM_MMAP_OFFSET ------------------------------------------------------------------------
def mmap_offset(handle: int, flags: int = 0, extensions: int = 0, reserved: tuple[int, int] = (0, 0)) -> bytearray:
    return bytearray(struct.pack("<QIIQQQ", extensions, handle, flags, 0, *reserved))


def test_mmap_offset(c):
    h = c.bo()
    a = mmap_offset(h)
    assert c.call(abi.GEM_MMAP_OFFSET, a) == 0
    assert u64(a, 16) and u64(a, 16) % abi.PAGE == 0
    assert c.call(abi.GEM_MMAP_OFFSET, mmap_offset(h, extensions=1)) == errno.EINVAL
    assert c.call(abi.GEM_MMAP_OFFSET, mmap_offset(h, reserved=(1, 0))) == errno.EINVAL
    assert c.call(abi.GEM_MMAP_OFFSET, mmap_offset(h, flags=2)) == errno.EINVAL
    assert c.call(abi.GEM_MMAP_OFFSET, mmap_offset(99)) == errno.ENOENT
    assert c.call(abi.GEM_MMAP_OFFSET, mmap_offset(h, flags=1)) == errno.EINVAL  # PCI barrier with a handle
