"""CPU seconds and resident memory of processes, from ``/proc`` (Linux).

``cpu_seconds(pid)`` is ``utime + stime`` of ``/proc/<pid>/stat`` (all threads of the
process); a measurement takes it before and after a window for every node of the network
and divides the difference by the transactions committed in the window.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "machine_busy_seconds", "rss_mb"]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process has used so far (None if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of stat); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int) -> float | None:
    """Resident memory in MiB (None if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (``/proc/stat``, first line)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS
