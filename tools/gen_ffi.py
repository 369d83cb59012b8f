"""Generate ``xeclient/uapi/_ffi_abi.py`` from ``cdefs/*.h``.

Why a generated module: parsing the cdefs with pycparser at import costs ~90 ms,
while the out-of-line ABI module cffi emits loads in a few milliseconds and needs
no C compiler.  The generated file is committed so that ``import xeclient`` works
from a plain checkout; ``tests/unit/test_ffi_generated.py`` regenerates it in
memory and fails when it is stale (``--check`` does the same from the command line).

Usage: ``python tools/gen_ffi.py [--check]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDEFS = ROOT / "cdefs"
TARGET = ROOT / "xeclient" / "uapi" / "_ffi_abi.py"

#: Order matters: each header uses types declared by the ones before it.
HEADERS = ("drm.h", "watch_queue.h", "xe_drm_events.h", "xe_drm.h")


def cdef_source(cdefs: Path = CDEFS) -> str:
    """The concatenated declarations, in dependency order."""
    return "\n".join((cdefs / name).read_text() for name in HEADERS)


def generate(cdefs: Path = CDEFS) -> str:
    """Return the text of the out-of-line ABI module for ``cdefs``."""
    import cffi  # build-time only

    builder = cffi.FFI()
    builder.cdef(cdef_source(cdefs))
    builder.set_source("xeclient.uapi._ffi_abi", None)
    out = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()):  # cffi announces "generating <file>"
        builder.emit_python_code(out)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed module is stale")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is stale: run python tools/gen_ffi.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
