"""An explorer (explore.py) started by a test in its own process, on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Explorer:
    proc: subprocess.Popen
    url: str  # http://127.0.0.1:PORT
    log: str  # the file its stderr goes to

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stderr(self) -> str:
        with open(self.log) as f:
            return f.read()

    def stop(self, timeout: float = 30, sig: int = signal.SIGINT) -> tuple[int, str]:
        """Ctrl-C (SIGINT), as a user stops it, or another signal: (exit code, what it printed on stdout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out


def start(args: list[str], log: str, cwd: str = ROOT, timeout: float = 120) -> Explorer:
    """Start `explore.py ARGS` and wait until it prints its address."""
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "explore.py"), *args],
        stdout=subprocess.PIPE,
        stderr=open(log, "w"),
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        found = re.search(r"explorer: (http://127\.0\.0\.1:\d+)/", line)
        if found:
            return Explorer(proc, found.group(1), log)
    proc.kill()
    raise AssertionError(f"the explorer did not start: {open(log).read()[-2000:]}")
