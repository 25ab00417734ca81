"""Background processes that `make serve` starts and `make stop` stops: each in a process group
of its own (its children, such as a code server's run workers and their Spark JVMs, are in it
too), its output in a log file, its id and start in a pid file. Stopping kills exactly the
groups whose pid files it finds, and only if the process is still the one that was started (a
recycled pid is someone else's; the start is compared in clock ticks since boot, which no step
of the wall clock moves): TERM, then KILL after a grace period (dagster's
processes can take over 20 s to honour TERM).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from .launcher import process_start, process_ticks, ticks_to_time


def pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def start(name: str, cmd: list[str], env: dict, run_dir: Path, log_dir: Path,
          cwd: str | None = None) -> int:
    """Start cmd in a new session (its own process group); return its pid."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    found = process_ticks(proc.pid)  # one read of /proc: its start in ticks and in time
    pid_file(run_dir, name).write_text(json.dumps(
        {"pid": proc.pid, "started": ticks_to_time(found[0]) if found else None,
         "ticks": found[0] if found else None, "cmd": cmd}))
    return proc.pid


def recorded(run_dir: Path, name: str) -> dict | None:
    path = pid_file(run_dir, name)
    if not path.exists():
        return None
    return json.loads(path.read_text())


def alive(record: dict | None) -> bool:
    """Whether the recorded process still runs and is the one we started."""
    if not record:
        return False
    found = process_ticks(record["pid"])
    if found is None or found[1] in ("Z", "X"):
        return False
    if record.get("ticks") is not None:
        return found[0] == record["ticks"]
    started = process_start(record["pid"])  # a pid file of an earlier version: its start time
    return record.get("started") is None or (started is not None
                                             and abs(started[0] - record["started"]) < 2.0)


def stop(run_dir: Path, name: str, grace_s: float = 20.0, say=None) -> bool:
    """Stop the recorded process group; True if something was running. `say` is told which
    processes outlived the grace period and were killed."""
    record = recorded(run_dir, name)
    was_running = alive(record)
    if was_running:
        pgid = record["pid"]  # a session leader: its pid is its group's id
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.time() + grace_s
        while time.time() < deadline and _group_alive(pgid):
            time.sleep(0.2)
        if _group_alive(pgid):
            if say is not None:
                say(f"{name}: still running {grace_s:.0f} s after SIGTERM, killed: " + "; ".join(
                    f"{pid} {cmd[:160]}" for pid, cmd in _group_members(pgid)))
            _signal_group(pgid, signal.SIGKILL)
            deadline = time.time() + 10
            while time.time() < deadline and _group_alive(pgid):
                time.sleep(0.1)
    pid_file(run_dir, name).unlink(missing_ok=True)
    return was_running


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the group's processes (zombies count as gone)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append((int(entry), cmd))
    return members


def _group_alive(pgid: int) -> bool:
    return bool(_group_members(pgid))


def wait_until(check, timeout_s: float, what: str, every_s: float = 0.5) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(every_s)
    raise TimeoutError(f"{what} did not come up within {timeout_s:.0f} s")
