"""The ABI proof by a C compiler: gcc's sizeof/offsetof/_Alignof and constant
values for everything the ffi declares, compared with the ffi.

One C program is generated from the ffi itself (every struct, every field,
including the members of anonymous unions and of nested anonymous structs, and
every ``#define``/enum constant), compiled over ``cdefs/*.h`` in the order
``tools/gen_ffi.py`` uses, run once, and its output compared line by line.  So a
declaration cffi lays out differently from C, or a constant cffi reads
differently, fails here.  Skipped where gcc is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from xeclient.uapi import ffi

ROOT = Path(__file__).resolve().parents[2]
CDEFS = ROOT / "cdefs"
HEADERS = ("drm.h", "watch_queue.h", "xe_drm_events.h", "xe_drm.h")
GCC = shutil.which("gcc")

pytestmark = pytest.mark.skipif(GCC is None, reason="gcc is not installed: the C-compiler ABI proof needs it")


@dataclass(frozen=True)
class Field:
    path: tuple[str, ...]  #: ("preferred_mem_loc", "devmem_fd") for a nested anonymous member
    offset: int
    size: int | None  #: None for a flexible array member


def _is_anonymous(ctype: Any) -> bool:
    return ctype.kind in ("struct", "union") and str(ctype.cname).split(" ", 1)[1].startswith("$")


def walk_fields(ctype: Any, prefix: tuple[str, ...] = (), base: int = 0) -> Iterator[Field]:
    """Every non-bitfield member of ``ctype``, recursing into anonymous aggregates.

    cffi already flattens anonymous unions/structs without a member name into
    their parent; named members of an anonymous type (``} atomic;``) are walked.
    """
    for name, field in ctype.fields or ():
        if field.bitsize != -1:
            continue
        ftype = field.type
        flexible = ftype.kind == "array" and ftype.length is None
        path = (*prefix, name)
        offset = base + field.offset
        yield Field(path, offset, None if flexible else ffi.sizeof(ftype))
        if _is_anonymous(ftype):
            yield from walk_fields(ftype, path, offset)


def bitfields(ctype: Any) -> list[str]:
    return [name for name, field in ctype.fields or () if field.bitsize != -1]


def struct_names() -> list[str]:
    _typedefs, structs, unions = ffi.list_types()
    return [f"struct {s}" for s in structs] + [f"union {u}" for u in unions]


def constant_names() -> list[str]:
    return sorted(dir(ffi.dlopen(None)))


def c_program() -> str:
    lines = ["#include <stdio.h>", "#include <stdint.h>", "#include <stddef.h>", "#include <string.h>"]
    lines += [f'#include "{h}"' for h in HEADERS]
    lines.append("int main(void) {")
    for struct in struct_names():
        ctype = ffi.typeof(struct)
        lines.append(f'printf("S|{struct}|%zu|%zu\\n", sizeof({struct}), _Alignof({struct}));')
        for f in walk_fields(ctype):
            member = ".".join(f.path)
            size = "0" if f.size is None else f"sizeof((({struct} *)0)->{member})"
            lines.append(f'printf("F|{struct}|{member}|%zu|%zu\\n", offsetof({struct}, {member}), (size_t){size});')
        for name in bitfields(ctype):
            # every bit of the bitfield set, all else zero: shows where the field lives
            ones = (1 << dict(ctype.fields)[name].bitsize) - 1
            lines.append("{")
            lines.append(f"{struct} v; unsigned char *b = (unsigned char *)&v; memset(&v, 0, sizeof v);")
            lines.append(f"v.{name} = {ones:#x}u;")
            lines.append(f'printf("B|{struct}|{name}|");')
            lines.append('for (size_t i = 0; i < sizeof v; i++) printf("%02x", b[i]);')
            lines.append('printf("\\n");')
            lines.append("}")
    for name in constant_names():
        lines.append(
            f'printf("C|{name}|%lld|%llu|%d\\n", (long long)({name}), (unsigned long long)({name}), ({name}) < 0);'
        )
    lines.append("return 0;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def run_c(tmp_path: Path, source: str, include_dir: Path = CDEFS) -> list[list[str]]:
    assert GCC is not None
    src = tmp_path / "abi.c"
    exe = tmp_path / "abi"
    src.write_text(source)
    subprocess.run(
        [
            GCC,
            "-std=gnu11",
            "-O0",
            "-Wall",
            "-Werror",
            "-Wno-type-limits",
            "-I",
            str(include_dir),
            "-o",
            str(exe),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=30).stdout
    return [line.split("|") for line in out.splitlines()]


@pytest.fixture(scope="module")
def gcc_output(tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    try:
        return run_c(tmp_path_factory.mktemp("abi"), c_program())
    except subprocess.CalledProcessError as exc:  # show the compiler's complaint, not just the exit code
        pytest.fail(f"{exc.cmd[0]} failed:\n{exc.stderr}")


def ffi_bitfield_bytes(struct: str, name: str) -> str:
    ctype = ffi.typeof(struct)
    field = dict(ctype.fields)[name]
    p = ffi.new(f"{struct} *")
    setattr(p, name, (1 << field.bitsize) - 1)
    return bytes(ffi.buffer(p)).hex()


def test_program_covers_the_whole_ffi() -> None:
    # the walk must see every struct and constant, else the comparison below proves less than it claims
    assert len(struct_names()) >= 50
    assert len(constant_names()) >= 230
    assert sum(1 for s in struct_names() for _ in walk_fields(ffi.typeof(s))) >= 290


def test_struct_sizes_and_alignment(gcc_output: list[list[str]]) -> None:
    seen = {}
    for kind, struct, *rest in gcc_output:
        if kind == "S":
            seen[struct] = (int(rest[0]), int(rest[1]))
    expected = {s: (ffi.sizeof(s), ffi.alignof(s)) for s in struct_names()}
    assert seen == expected


def test_field_offsets_and_sizes(gcc_output: list[list[str]]) -> None:
    seen = {}
    for kind, struct, *rest in gcc_output:
        if kind == "F":
            member, offset, size = rest
            seen[(struct, member)] = (int(offset), int(size))
    expected = {
        (s, ".".join(f.path)): (f.offset, f.size or 0) for s in struct_names() for f in walk_fields(ffi.typeof(s))
    }
    assert seen == expected


def test_bitfield_placement(gcc_output: list[list[str]]) -> None:
    seen = {(struct, rest[0]): rest[1] for kind, struct, *rest in gcc_output if kind == "B"}
    expected = {(s, name): ffi_bitfield_bytes(s, name) for s in struct_names() for name in bitfields(ffi.typeof(s))}
    assert expected, "watch_notification's type:24/subtype:8 should be here"
    assert seen == expected


def test_constants(gcc_output: list[list[str]]) -> None:
    lib = ffi.dlopen(None)
    seen = {}
    for kind, name, *rest in gcc_output:
        if kind == "C":
            signed, unsigned, negative = rest
            seen[name] = int(signed) if negative == "1" else int(unsigned)
    expected = {name: getattr(lib, name) for name in constant_names()}
    assert seen == expected
