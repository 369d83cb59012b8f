"""The committed ``xeclient/uapi/_ffi_abi.py`` is exactly what ``tools/gen_ffi.py``
makes from ``cdefs/*.h`` today, so the ffi can never lag behind the declarations."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "tools" / "gen_ffi.py"
TARGET = ROOT / "xeclient" / "uapi" / "_ffi_abi.py"

pytest.importorskip("cffi", reason="regenerating needs the cffi package (build-time only)")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_ffi", GEN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _load_generator()


def test_committed_module_is_current(gen: ModuleType) -> None:
    fresh = gen.generate()
    committed = TARGET.read_text()
    assert fresh == committed, "xeclient/uapi/_ffi_abi.py is stale: run python tools/gen_ffi.py"


def test_headers_in_dependency_order(gen: ModuleType) -> None:
    assert gen.HEADERS == ("drm.h", "watch_queue.h", "xe_drm_events.h", "xe_drm.h")
    assert {p.name for p in (ROOT / "cdefs").glob("*.h")} == set(gen.HEADERS), "a header gen_ffi does not read"


def test_generated_module_is_the_one_imported() -> None:
    from xeclient.uapi import _ffi_abi, ffi

    assert Path(_ffi_abi.__file__) == TARGET
    assert ffi is _ffi_abi.ffi


def test_check_mode_exit_status(gen: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # --check is what CI runs: 1 once the module differs (tried on a copy, never on the tree)
    stale = tmp_path / "_ffi_abi.py"
    stale.write_text(TARGET.read_text() + "# edited\n")
    monkeypatch.setattr(gen, "TARGET", stale)
    assert gen.main(["--check"]) == 1


def test_command_line() -> None:
    # exit 0 and silent on a current tree
    done = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
