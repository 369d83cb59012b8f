"""``xeclient inject``: on the fake (arming lasts for the process; --then-demo), and debugfs on a temporary tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xeclient import faults
from xeclient.backends.kernel import KernelBackend
from xeclient.cli import main


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XE_BACKEND", "XE_FAKE_PRESET", "XE_FAULT_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_on_the_fake_arming_alone_says_it_ends_with_the_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "rebind_enospc", "--probability", "100", "--times", "1", "--backend", "fake"]) == 2
    out = capsys.readouterr().out
    assert "armed rebind_enospc at fake backend: probability=100, times=1, interval=1" in out
    assert "--then-demo" in out and "xeclient demo --inject" in out


def test_status_and_disarm_on_the_fake(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "--status", "--backend", "fake", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["action"] == "status" and d["settings"]["probability"] == 0 and d["persistent"] is False
    assert main(["inject", "--disarm", "--backend", "fake"]) == 0
    assert "disarmed rebind_enospc" in capsys.readouterr().out


def test_then_demo_injects_into_each_incident(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "--backend", "fake", "--then-demo", "--incidents", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["incidents"], d["recovered"], d["fatal"]) == (2, 2, 0)
    assert {x["trigger"] for x in d["details"]} == {"inject"}


def test_then_demo_with_unlimited_failures_ends_fatal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "--backend", "fake", "--times", "-1", "--then-demo", "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["fatal"] == 1 and d["details"][0]["incident"]["reason"].startswith("still failing after 4")


def test_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "--probability", "150", "--backend", "fake"]) == 2
    assert "percentage" in capsys.readouterr().err
    assert main(["inject", "--times", "-5", "--backend", "fake"]) == 2


def test_unknown_attribute_on_the_fake(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "fail_gt_reset", "--backend", "fake"]) == 1
    assert "known: rebind_enospc" in capsys.readouterr().err


def test_kernel_without_a_device(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(KernelBackend, "render_nodes", lambda self: [])
    monkeypatch.setattr(KernelBackend, "probe", lambda self: "no render node is bound to the xe driver")
    assert main(["inject", "--backend", "kernel"]) == 1
    assert capsys.readouterr().err == "No Xe device: no render node is bound to the xe driver.\n"


def test_debugfs_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command's debugfs path, with a temporary tree standing in for /sys/kernel/debug."""
    attr = tmp_path / "debug" / "dri" / "0" / "fail_rebind_enospc"
    attr.mkdir(parents=True)
    for name in ("probability", "times", "interval", "space"):
        (attr / name).write_text("0\n")
    monkeypatch.setattr(faults, "DEBUGFS_ROOT", str(tmp_path / "debug"))
    real = faults.DebugfsFaultInjector.discover.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        faults.DebugfsFaultInjector,
        "discover",
        classmethod(lambda cls, path=None, **kw: real(cls, path, **{**kw, "debugfs": str(tmp_path / "debug")})),
    )
    # a backend without the fake's control surface, so the debugfs injector is chosen
    from xeclient.backends.fake import FakeBackend

    monkeypatch.setattr(FakeBackend, "inject", property(lambda self: None))
    assert main(["inject", "--backend", "fake", "--probability", "100", "--times", "2", "--interval", "3"]) == 0
    out = capsys.readouterr().out
    assert f"armed rebind_enospc at {attr}" in out
    assert (attr / "probability").read_text() == "100\n" and (attr / "times").read_text() == "2\n"
    assert (attr / "interval").read_text() == "3\n"
    monkeypatch.setenv("XE_FAULT_DIR", str(tmp_path / "nowhere"))
    assert main(["inject", "--backend", "fake"]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "nowhere") in err and "does not exist" in err
