"""Signals while a sweep or LOSO runs: no DVC call that edits the user's workspace is cut short.

`dvc exp run --queue` stashes the workspace, writes the experiment's params into params.yaml,
commits that to DVC's queue and pops the stash back. A signal in between (Ctrl-C, `timeout`, a
cancelled CI job: SIGINT or SIGTERM to the whole process group) would leave params.yaml holding
the experiment's values and the user's edits in `git stash`. So such a call runs in a session of
its own, out of reach of signals sent to this command's group, and while it runs a signal to this
command is only noted; it takes effect, as `Interrupted`, the moment the call has returned.
Anywhere else a signal raises `Interrupted` at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A signal asked the command to stop. A BaseException, as KeyboardInterrupt is, so that no
    `except Exception` on the way out swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a command a signal ended."""
        return 128 + self.signum


@dataclass
class _Handler:
    who: str
    deferring: str | None = None  # what runs that must not be cut short
    pending: list[int] = field(default_factory=list)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.deferring is None:
            raise Interrupted(signum)
        self.pending.append(signum)
        if len(self.pending) > 1:
            return
        # Nothing raised here may reach the DVC call under way (subprocess would kill it): not
        # a closed terminal's EIO after SIGHUP, not a reentrant write.
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            print(
                f"{self.who}: {signal.Signals(signum).name}: stopping once {self.deferring} "
                "has finished (a few seconds), so that it leaves your workspace as it was",
                file=sys.stderr,
                flush=True,
            )


_handler: _Handler | None = None


@contextmanager
def handled(who: str) -> Generator[None]:
    """Within: SIGINT, SIGTERM and SIGHUP raise `Interrupted`; one that nobody catches ends the
    command with a line (`who` names it) and exit status 128 + its number, not a traceback. The
    previous handlers come back on the way out."""
    global _handler
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    outer, _handler = _handler, _Handler(who)
    for signum in SIGNALS:
        signal.signal(signum, _handler)
    try:
        yield
    except Interrupted as exc:  # where nobody said more about it
        print(f"{who}: stopped by {exc.name}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_status) from None
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
        _handler = outer


@contextmanager
def deferred(what: str) -> Generator[None]:
    """Within (inside `handled`): a signal is noted, not raised; it is raised when the block ends.
    Run the DVC call with `start_new_session=True`, so a signal to the group misses it too."""
    handler = _handler
    if handler is None or handler.deferring is not None:
        yield
        return
    handler.deferring = what
    try:
        yield
    finally:  # an error of the block itself goes on out; it ends the command just the same
        handler.deferring = None
        pending, handler.pending = handler.pending, []
    if pending:
        raise Interrupted(pending[0])
