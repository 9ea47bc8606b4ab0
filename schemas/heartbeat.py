"""The liveness contract between a service without an HTTP port and its container health check.

The service touches a file after every loop iteration; the health check passes while the file is
younger than a limit. `python -m schemas.heartbeat PATH MAX_AGE_S` is that check (exit 0: alive).
"""

import sys
import time
from pathlib import Path


class Heartbeat:
    def __init__(self, path: str, every_s: float = 5.0) -> None:
        self._path = Path(path) if path else None
        self._every_s = every_s
        self._last = float("-inf")

    def beat(self) -> None:
        """Touches the file, at most once every `every_s` seconds (a loop may spin fast)."""
        now = time.monotonic()
        if self._path is None or now - self._last < self._every_s:
            return
        self._last = now
        self._path.touch()


def is_fresh(path: Path, max_age_s: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime <= max_age_s
    except FileNotFoundError:
        return False


if __name__ == "__main__":
    sys.exit(0 if is_fresh(Path(sys.argv[1]), float(sys.argv[2])) else 1)
