"""One writer per run directory: an OS file lock on `DIR/.lock`.

`generate` (and later `audit`) hold it exclusively while they write a run; `export` holds it
shared while it reads one, so it never reads a run that is being written, while several
exports may read the same run at once. The kernel drops the lock when its process dies, so
a lock file left behind by a killed process never blocks anyone: the file is only where the
lock lives, plus who holds it (pid, purpose, command) for the message of whoever is refused.

    with run_lock(run_dir, purpose="audit"):
        ...
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import UserError

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"

if sys.platform == "win32":
    import msvcrt

    _WIN_BYTE = 1 << 30  # the locked byte lies past the holder text, which stays readable

    def _try_lock(fd: int, shared: bool) -> bool:
        """Windows has no shared mode here: readers exclude each other too."""
        os.lseek(fd, _WIN_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WIN_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    def _alone(fd: int) -> bool:
        return True

    def _alive(pid: int) -> bool:
        return True

else:
    import fcntl

    def _try_lock(fd: int, shared: bool) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    def _alone(fd: int) -> bool:
        """Whether no one else holds the lock. Asked only on release: a failed try may drop
        this holder's shared lock (conversion is not atomic), which is what release does."""
        return _try_lock(fd, shared=False)

    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class RunLock:
    """The lock of one run directory: exclusive for writers, `shared=True` for readers."""

    def __init__(self, run_dir: Path | str, purpose: str, *, shared: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.purpose = purpose
        self.shared = shared
        self._fd: int | None = None
        self._writable = False

    def acquire(self) -> None:
        """Take the lock or raise UserError naming who holds it; never waits."""
        fd = self._open()
        if fd is None:
            return
        try:
            locked = _try_lock(fd, self.shared)
            holders = "" if locked else _describe(_holders(fd))
        except OSError as exc:
            os.close(fd)
            raise UserError(f"{self.path}: cannot lock the run directory ({exc.strerror})") from None
        if not locked:
            os.close(fd)
            raise UserError(
                f"{self.run_dir} is in use by {holders}; wait for it to finish or stop it, then rerun"
            )
        self._fd = fd
        if self._writable:
            self._note_holder(fd)

    def _open(self) -> int | None:
        """The lock file's descriptor; a reader of a run it cannot write falls back to reading."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            self._writable = True
            return fd
        except OSError as exc:
            if not self.shared:
                raise UserError(
                    f"{self.path}: cannot open the run's lock file ({exc.strerror}); "
                    f"{self.purpose} needs a run directory it can write"
                ) from None
        try:
            return os.open(self.path, os.O_RDONLY)
        except OSError:
            log.debug("%s: no lock file and none can be made; reading without a lock", self.path)
            return None

    def _note_holder(self, fd: int) -> None:
        """Say who holds the lock: a writer replaces the text, readers add a line each."""
        line = json.dumps(
            {"pid": os.getpid(), "purpose": self.purpose, "command": _command(), "since": time.time()}
        )
        try:
            if not self.shared:
                os.ftruncate(fd, 0)
            os.write(fd, (line + "\n").encode())
        except OSError as exc:  # the lock is held all the same; only the note is missing
            log.debug("%s: cannot note the lock holder (%s)", self.path, exc.strerror)

    def release(self) -> None:
        """Let go; the last holder out empties the file, so a run left alone reads the same."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self._writable and (not self.shared or _alone(fd)):
                os.ftruncate(fd, 0)
            _unlock(fd)
        except OSError as exc:
            log.debug("%s: %s while releasing (closing releases the lock anyway)", self.path, exc.strerror)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def run_lock(run_dir: Path | str, purpose: str, *, shared: bool = False) -> RunLock:
    """`with run_lock(dir, purpose="audit"):` holds the run's lock for the block."""
    return RunLock(run_dir, purpose, shared=shared)


def _holders(fd: int) -> list[dict[str, Any]]:
    """The holders the lock file names whose process still lives, newest first."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 1 << 16).decode("utf-8", "replace")
    holders = []
    for line in text.splitlines():
        try:
            holder = json.loads(line)
            pid = int(holder["pid"])
        except (ValueError, KeyError, TypeError):
            continue
        if _alive(pid):
            holders.append(holder)
    return holders[::-1]


def _describe(holders: list[dict[str, Any]]) -> str:
    if not holders:
        return "another process"
    parts = []
    for holder in holders[:3]:
        since = time.strftime("%H:%M:%S", time.localtime(float(holder.get("since", 0))))
        parts.append(
            f"pid {holder['pid']} ({holder.get('purpose', '?')}: {holder.get('command', '?')}, since {since})"
        )
    return ", ".join(parts)


def _command() -> str:
    """This process's command line, without URL passwords or key-like strings, kept short."""
    program = Path(sys.argv[0]).name if sys.argv else "python"
    program = "critique-synth" if program == "__main__.py" else program
    text = " ".join([program, *sys.argv[1:]])
    text = re.sub(r"//[^/@\s]*@", "//***@", text)
    text = re.sub(r"(sk|hf)[-_][A-Za-z0-9_-]{6,}", r"\1-***", text)
    return text if len(text) <= 200 else text[:197] + "..."
