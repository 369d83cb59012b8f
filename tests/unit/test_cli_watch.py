"""``xeclient watch`` on the fake backend."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time

import pytest

from xeclient.cli import main


def test_demo_events_as_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "watch",
            "--backend",
            "fake",
            "--json",
            "--watch-id",
            "7",
            "--demo-events",
            "3",
            "--demo-interval",
            "0",
            "--count",
            "3",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 3
    for obj in lines:
        assert obj["event"] == "vm_error" and obj["errno"] == 28 and obj["errno_name"] == "ENOSPC"
        assert obj["watch_id"] == 7 and obj["timestamp_ns"] > 0
    assert err.splitlines()[-1].startswith("xeclient watch: 3 event(s)")
    assert "vm_error 3" in err and "3 event(s) shown" in err


def test_demo_events_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["watch", "--backend", "fake", "--demo-events", "2", "--demo-interval", "0", "--count", "2"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and all("VM_ERR vm 1: ENOSPC" in line for line in lines)
    assert "watching /dev/dri/renderD128 (fake) with watch_id 0" in err


def test_duration_without_events(capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.monotonic()
    assert main(["watch", "--backend", "fake", "--duration", "0.2"]) == 0
    assert 0.2 <= time.monotonic() - t0 < 5
    out, err = capsys.readouterr()
    assert out == ""
    assert "0 event(s)" in err and "(none)" in err and "0.2 s elapsed" in err


def test_demo_needs_the_fake(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "--backend", "kernel", "--demo-events", "1"]) == 2
    assert "needs the fake backend" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--watch-id", "256"], ["--watch-id", "-1"], ["--count", "x"]])
def test_bad_options(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["watch", "--backend", "fake", *bad])
    assert exc.value.code == 2


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["watch", "--help"])
    out = capsys.readouterr().out
    for option in ("--backend", "--device", "--json", "--watch-id", "--demo-events", "--count", "--duration"):
        assert option in out


def test_ctrl_c_exits_0_with_a_summary() -> None:
    code = "import sys; from xeclient.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["watch", "--backend", "fake", "--demo-events", "1000", "--demo-interval", "0.02"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout=30), "no event printed within 30 s"
        first = proc.stdout.readline()
        assert "VM_ERR" in first
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("xeclient watch: ") and "interrupted" in last and "vm_error" in last
    assert "Traceback" not in err
