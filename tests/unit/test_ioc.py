"""The ``_IOC`` mirror: encoding, decoding, range checks and the architecture guard."""

from __future__ import annotations

import itertools
import os
import platform

import pytest

from xeclient.uapi import ioc
from xeclient.uapi.ioc import IO, IOC, IOC_DIR, IOC_NR, IOC_SIZE, IOC_TYPE, IOR, IOW, IOWR, check_arch


def test_layout_constants() -> None:
    # asm-generic: nr 0-7, type 8-15, size 16-29, direction 30-31; write 1, read 2
    assert (ioc.IOC_NRSHIFT, ioc.IOC_TYPESHIFT, ioc.IOC_SIZESHIFT, ioc.IOC_DIRSHIFT) == (0, 8, 16, 30)
    assert (ioc.IOC_NRBITS, ioc.IOC_TYPEBITS, ioc.IOC_SIZEBITS, ioc.IOC_DIRBITS) == (8, 8, 14, 2)
    assert (ioc.IOC_NONE, ioc.IOC_WRITE, ioc.IOC_READ) == (0, 1, 2)


@pytest.mark.parametrize(
    ("code", "encoded"),
    [
        (0xC0406400, lambda: IOWR("d", 0x00, 64)),  # DRM_IOCTL_VERSION
        (0x40086409, lambda: IOW("d", 0x09, 8)),  # DRM_IOCTL_GEM_CLOSE
        (0xC0286440, lambda: IOWR(ord("d"), 0x40, 40)),  # DRM_IOCTL_XE_DEVICE_QUERY
        (0x40186450, lambda: IOW("d", 0x50, 24)),  # DRM_IOCTL_XE_VM_RESTART
        (0x40106451, lambda: IOW("d", 0x51, 16)),  # DRM_IOCTL_XE_WATCH_QUEUE
        (0x00005760, lambda: IO("W", 0x60)),  # IOC_WATCH_QUEUE_SET_SIZE
        (0x00005761, lambda: IO("W", 0x61)),  # IOC_WATCH_QUEUE_SET_FILTER
        (0x80045430, lambda: IOR("T", 0x30, 4)),  # TIOCGPTN, an _IOR from another subsystem
    ],
)
def test_known_codes(code: int, encoded: object) -> None:
    assert callable(encoded)
    assert encoded() == code


def test_helpers_set_the_direction() -> None:
    assert IOC_DIR(IO("x", 1)) == ioc.IOC_NONE
    assert IOC_DIR(IOR("x", 1, 8)) == ioc.IOC_READ
    assert IOC_DIR(IOW("x", 1, 8)) == ioc.IOC_WRITE
    assert IOC_DIR(IOWR("x", 1, 8)) == ioc.IOC_READ | ioc.IOC_WRITE
    assert IO("x", 1) == IOC(0, "x", 1, 0)


def test_type_as_char_or_int() -> None:
    assert IOWR("d", 0x40, 40) == IOWR(100, 0x40, 40)


EDGES_DIR = (0, 1, 2, 3)
EDGES_BYTE = (0, 1, 0x40, 0x7F, 0x80, 0xFE, 0xFF)
EDGES_SIZE = (0, 1, 8, 136, 0x1FFF, 0x2000, 0x3FFF)


def test_round_trip() -> None:
    for d, t, nr, size in itertools.product(EDGES_DIR, EDGES_BYTE, EDGES_BYTE, EDGES_SIZE):
        code = IOC(d, t, nr, size)
        assert 0 <= code < 1 << 32
        assert (IOC_DIR(code), IOC_TYPE(code), IOC_NR(code), IOC_SIZE(code)) == (d, t, nr, size)


def test_decode_encode_round_trip() -> None:
    for code in (0, 0xFFFFFFFF, 0xC0406400, 0x40106451, 0x00005760, 0x12345678, 0x80000000):
        assert IOC(IOC_DIR(code), IOC_TYPE(code), IOC_NR(code), IOC_SIZE(code)) == code


def test_decoders_ignore_higher_bits() -> None:
    # a sign-extended code (as some callers pass a negative C int) decodes to the same fields
    code = 0xC0406400
    as_signed = code - (1 << 32)
    assert IOC_TYPE(as_signed) == IOC_TYPE(code) and IOC_NR(as_signed) == IOC_NR(code)
    assert IOC_SIZE(as_signed) == IOC_SIZE(code) and IOC_DIR(as_signed) == IOC_DIR(code)


@pytest.mark.parametrize(
    ("args", "what"),
    [
        ((4, "d", 0, 0), "direction"),
        ((-1, "d", 0, 0), "direction"),
        ((0, 256, 0, 0), "type"),
        ((0, -1, 0, 0), "type"),
        ((0, "\u0100", 0, 0), "type"),
        ((0, "d", 256, 0), "number"),
        ((0, "d", -1, 0), "number"),
        ((0, "d", 0, 1 << 14), "size"),
        ((0, "d", 0, -1), "size"),
    ],
)
def test_range_errors(args: tuple[int, int | str, int, int], what: str) -> None:
    with pytest.raises(ValueError, match=what):
        IOC(*args)


def test_size_limit_via_helpers() -> None:
    assert IOC_SIZE(IOW("d", 0, (1 << 14) - 1)) == (1 << 14) - 1
    with pytest.raises(ValueError):
        IOWR("d", 0, 1 << 14)


def test_type_must_be_one_character() -> None:
    with pytest.raises(TypeError):
        IO("dd", 0)


@pytest.mark.parametrize("machine", ["x86_64", "AMD64", "aarch64", "arm64", "riscv64", "s390x", "i686"])
def test_arch_guard_accepts_asm_generic(machine: str) -> None:
    check_arch(machine)


@pytest.mark.parametrize("machine", ["ppc64le", "ppc64", "ppc", "mips", "mips64", "sparc64", "alpha", "parisc64"])
def test_arch_guard_refuses_other_layouts(machine: str) -> None:
    with pytest.raises(RuntimeError, match="_IOC layout"):
        check_arch(machine)


def _pretend_machine(monkeypatch: pytest.MonkeyPatch, machine: str) -> None:
    # whichever the guard asks, platform.machine() or os.uname()
    real = os.uname()
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(os, "uname", lambda: os.uname_result((*real[:4], machine)))


def test_arch_guard_reads_the_running_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_machine(monkeypatch, "ppc64le")
    with pytest.raises(RuntimeError, match="ppc64le"):
        check_arch()
    _pretend_machine(monkeypatch, "x86_64")
    check_arch()


def test_this_machine_passes() -> None:
    check_arch()
