"""A Python mirror of the asm-generic ``_IOC`` request encoding.

Request codes are computed here from (direction, type, number, size) instead of
being copied as opaque hex, so that a wrong struct size shows up as a wrong code
in the ABI tests.  x86_64 and arm64 use the asm-generic layout:

    bits 0-7 nr | 8-15 type | 16-29 size (14 bits) | 30-31 direction

Alpha, MIPS, PowerPC and SPARC use 13 size bits and 3 direction bits; the
arch guard below refuses them rather than producing silently wrong codes.
"""

from __future__ import annotations

import os

IOC_NRBITS = 8
IOC_TYPEBITS = 8
IOC_SIZEBITS = 14
IOC_DIRBITS = 2

IOC_NRSHIFT = 0
IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS
IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS
IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS

IOC_NONE = 0
IOC_WRITE = 1  # userspace writes, the kernel reads: copy in
IOC_READ = 2  # the kernel writes, userspace reads: copy out

_ASM_GENERIC_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686", "aarch64", "arm64", "riscv64", "s390x"})


def check_arch(machine: str | None = None) -> None:
    """Raise ``RuntimeError`` on an architecture whose ``_IOC`` layout differs."""
    machine = (machine or os.uname().machine).lower()
    if machine and machine not in _ASM_GENERIC_MACHINES:
        raise RuntimeError(
            f"xeclient computes ioctl request codes with the asm-generic _IOC layout; "
            f"{machine!r} uses a different one and is not supported"
        )


def IOC(direction: int, type_: int | str, nr: int, size: int) -> int:
    """Encode a request code; every field is range-checked like the kernel's macros."""
    t = ord(type_) if isinstance(type_, str) else type_
    if not 0 <= direction < (1 << IOC_DIRBITS):
        raise ValueError(f"ioctl direction {direction} does not fit {IOC_DIRBITS} bits")
    if not 0 <= t < (1 << IOC_TYPEBITS):
        raise ValueError(f"ioctl type {t} does not fit {IOC_TYPEBITS} bits")
    if not 0 <= nr < (1 << IOC_NRBITS):
        raise ValueError(f"ioctl number {nr} does not fit {IOC_NRBITS} bits")
    if not 0 <= size < (1 << IOC_SIZEBITS):
        raise ValueError(f"ioctl size {size} does not fit {IOC_SIZEBITS} bits")
    return (direction << IOC_DIRSHIFT) | (t << IOC_TYPESHIFT) | (nr << IOC_NRSHIFT) | (size << IOC_SIZESHIFT)


def IO(type_: int | str, nr: int) -> int:
    return IOC(IOC_NONE, type_, nr, 0)


def IOR(type_: int | str, nr: int, size: int) -> int:
    return IOC(IOC_READ, type_, nr, size)


def IOW(type_: int | str, nr: int, size: int) -> int:
    return IOC(IOC_WRITE, type_, nr, size)


def IOWR(type_: int | str, nr: int, size: int) -> int:
    return IOC(IOC_READ | IOC_WRITE, type_, nr, size)


def IOC_DIR(request: int) -> int:
    return (request >> IOC_DIRSHIFT) & ((1 << IOC_DIRBITS) - 1)


def IOC_TYPE(request: int) -> int:
    return (request >> IOC_TYPESHIFT) & ((1 << IOC_TYPEBITS) - 1)


def IOC_NR(request: int) -> int:
    return (request >> IOC_NRSHIFT) & ((1 << IOC_NRBITS) - 1)


def IOC_SIZE(request: int) -> int:
    return (request >> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1)
