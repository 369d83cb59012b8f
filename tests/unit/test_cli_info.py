"""``xeclient info``: backend choice, the no-device sentences, text and JSON output (fake or no backend)."""

from __future__ import annotations

import json

import pytest

from xeclient.backends.kernel import KernelBackend
from xeclient.cli import main
from xeclient.cli.info import KNOWN_DEVICES, backend_name, open_error_sentence

NO_XE = "no render node is bound to the xe driver"


@pytest.fixture(autouse=True)
def no_xe_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without an Xe GPU, whatever this one has; no XE_* environment."""
    monkeypatch.setattr(KernelBackend, "render_nodes", lambda self: [])
    monkeypatch.setattr(KernelBackend, "probe", lambda self: NO_XE)
    for name in ("XE_BACKEND", "XE_FAKE_PRESET"):
        monkeypatch.delenv(name, raising=False)


def test_default_falls_back_to_the_fake_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    first, *rest = out.splitlines()
    assert first == f"No Xe device found ({NO_XE}); showing the bundled fake driver instead."
    text = "\n".join(rest)
    assert "backend   fake" in text
    assert "PCI 8086:e20b" in text and "Intel Arc B580" in text
    assert "vram      0 MiB used of 256 MiB" in text
    assert "VM_RESTART yes  WATCH_QUEUE yes" in text
    assert "compute0@gt0" in text


def test_kernel_without_a_device_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--backend", "kernel"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"No Xe device: {NO_XE}.\n"


def test_xe_backend_environment_is_honoured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XE_BACKEND", "kernel")
    assert main(["info"]) == 1
    assert capsys.readouterr().err.startswith("No Xe device:")
    monkeypatch.setenv("XE_BACKEND", "fake")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "No Xe device found" not in out and "backend   fake" in out


def test_a_missing_device_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--backend", "kernel", "--device", "/nonexistent/renderD200"]) == 1
    assert capsys.readouterr().err == "No Xe device at /nonexistent/renderD200: there is no such file.\n"


def test_a_device_that_is_not_drm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--device", "/dev/null"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("No Xe device at /dev/null: it is not a DRM device") and err.count("\n") == 1


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "fake" and info["fallback_reason"] == NO_XE
    assert info["pci_id"] == "8086:e20b" and info["name"] == KNOWN_DEVICES[0xE20B]
    assert info["vram"] == {"total": 256 << 20, "used": 0}
    assert info["series"] == {"vm_restart": True, "watch_queue": True, "notification_pipes": True}
    assert "compute0@gt0" in info["engines"]
    assert [m["class"] for m in info["memory"]] == ["sysmem", "vram"]


def test_integrated_part(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XE_FAKE_PRESET", "mtl")
    assert main(["info", "--backend", "fake"]) == 0
    out = capsys.readouterr().out
    assert "vram      none" in out and "Meteor Lake" in out


def test_unknown_pci_id_has_no_name(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XE_FAKE_PRESET", "dg2")
    monkeypatch.setitem(KNOWN_DEVICES, 0x56A0, "")
    monkeypatch.delitem(KNOWN_DEVICES, 0x56A0)
    assert main(["info", "--backend", "fake", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] is None


def test_backend_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert backend_name(None) == "auto"
    assert backend_name("Fake") == "fake"
    monkeypatch.setenv("XE_BACKEND", "kernel")
    assert backend_name(None) == "kernel" and backend_name("fake") == "fake"


def test_open_error_sentences() -> None:
    assert "permission denied" in open_error_sentence(PermissionError(13, "Permission denied"), "/dev/dri/renderD128")
    assert open_error_sentence(OSError(5, "I/O error"), None).startswith("Cannot use the render node")
