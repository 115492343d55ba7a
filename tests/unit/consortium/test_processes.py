"""Process tracking: a pid file is trusted only for the very process it was written for."""

from __future__ import annotations

import sys
from pathlib import Path

from consortium import processes
from consortium.processes import ProcessSpec


def _spec(home: Path, **env: str) -> ProcessSpec:
    return ProcessSpec(
        name="sleeper",
        argv=[sys.executable, "-c", "import time; time.sleep(30)"],
        home=home,
        env=env,
    )


def test_a_node_is_recognised_by_its_program_and_identifying_environment(tmp_path: Path) -> None:
    spec = _spec(tmp_path, FABRIC_CFG_PATH="/nodes/a", PYTHONPATH="/one")
    pid = processes.start(spec)
    try:
        assert processes.running_pid(spec) == pid
        # Another node's spec (same program, other config folder) does not claim it ...
        assert processes.running_pid(_spec(tmp_path, FABRIC_CFG_PATH="/nodes/b")) is None
        # ... while a shell with another PYTHONPATH still finds its own node.
        same = _spec(tmp_path, FABRIC_CFG_PATH="/nodes/a", PYTHONPATH="/two")
        assert processes.running_pid(same) == pid
        # Starting it again is a no-op: the same process.
        assert processes.start(spec) == pid
    finally:
        assert processes.stop(spec)
    assert processes.running_pid(spec) is None
    assert not spec.pid_file.exists()


def test_a_stale_pid_file_is_not_trusted(tmp_path: Path) -> None:
    spec = _spec(tmp_path, FABRIC_CFG_PATH="/nodes/a")
    tmp_path.mkdir(exist_ok=True)
    spec.pid_file.write_text("1\n")  # init: alive, but not our program
    assert processes.running_pid(spec) is None
    assert processes.stop(spec) is False
    assert "starting" not in processes.tail(spec.log_file)
