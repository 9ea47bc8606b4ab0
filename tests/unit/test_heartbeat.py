import os
import subprocess
import sys
import time
from pathlib import Path

from schemas.heartbeat import Heartbeat, is_fresh


def test_heartbeat_file_is_fresh_after_a_beat_and_stale_later(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    assert not is_fresh(path, 60)
    Heartbeat(str(path)).beat()
    assert is_fresh(path, 60)
    old = time.time() - 120
    os.utime(path, (old, old))
    assert not is_fresh(path, 60)


def test_beats_are_throttled(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    heartbeat = Heartbeat(str(path), every_s=3600)
    heartbeat.beat()
    old = time.time() - 120
    os.utime(path, (old, old))
    heartbeat.beat()  # within the hour: no touch
    assert not is_fresh(path, 60)


def test_no_path_writes_nothing(tmp_path: Path) -> None:
    Heartbeat("").beat()
    assert list(tmp_path.iterdir()) == []


def test_health_check_command_exit_codes(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    check = [sys.executable, "-m", "schemas.heartbeat", str(path), "60"]
    assert subprocess.run(check).returncode == 1
    path.touch()
    assert subprocess.run(check).returncode == 0
