"""The C references (``xeclient/bench/csrc/*.c``, shipped as package data), built at run time with the system compiler.

Binaries go to a cache directory keyed by a hash of the source, the compiler
and the flags, so a second run starts at once and an edited source is rebuilt.
With no compiler (or no source tree) a figure reports its floor as skipped and
says why, instead of failing.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

CFLAGS = ("-O2", "-std=gnu11", "-Wall")


class CToolUnavailable(RuntimeError):
    """The C reference cannot be built here; the message says why (shown in the report)."""


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "xeclient", "bench")


def sources_dir() -> Path | None:
    """The C sources shipped beside this module (env ``XECLIENT_BENCH_TOOLS`` overrides)."""
    env = os.environ.get("XECLIENT_BENCH_TOOLS")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent / "csrc")
    for path in candidates:
        if (path / "floor_reader.c").is_file():
            return path
    return None


def compiler() -> list[str] | None:
    cc = os.environ.get("CC")
    if cc:
        argv = shlex.split(cc)
        if argv and shutil.which(argv[0]):
            return argv
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def build(name: str, cache_dir: str | None = None) -> str:
    """Path of the built ``csrc/<name>.c``, compiling it into the cache if needed."""
    src_dir = sources_dir()
    if src_dir is None:
        raise CToolUnavailable(
            "no C sources (xeclient/bench/csrc/ is missing from this install; set XECLIENT_BENCH_TOOLS)"
        )
    source = src_dir / f"{name}.c"
    if not source.is_file():
        raise CToolUnavailable(f"no {source}")
    cc = compiler()
    if cc is None:
        raise CToolUnavailable("no C compiler (cc/gcc/clang not on PATH, CC unset): the C floor is skipped")
    text = source.read_bytes()
    key = hashlib.sha256(b"\0".join([text, " ".join(cc).encode(), " ".join(CFLAGS).encode()])).hexdigest()[:16]
    out_dir = Path(cache_dir or default_cache_dir())
    out = out_dir / f"{name}-{key}"
    if out.is_file() and os.access(out, os.X_OK):
        return str(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CToolUnavailable(f"cannot create the cache directory {out_dir}: {exc.strerror}") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", dir=out_dir)
    os.close(fd)
    try:
        proc = subprocess.run([*cc, *CFLAGS, "-o", tmp, str(source)], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise CToolUnavailable(f"{' '.join(cc)} failed on {source.name}: {proc.stderr.strip()[:300]}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)  # atomic: concurrent runs never see a half-written binary
    except (OSError, subprocess.SubprocessError) as exc:
        raise CToolUnavailable(f"building {source.name} failed: {exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(out)
