"""The user's git workspace while DVC queues experiments from it, and what a killed queueing left.

`dvc exp run --queue` detaches HEAD, stashes the uncommitted changes (a plain `WIP on <branch>`
entry in `git stash`, like any `git stash`), writes the experiment's params into params.yaml and
stages them, commits that to its queue (briefly a `dvc-exp:` entry in `git stash` too), then
puts all of it back. Signals cannot cut that short (`interrupts`), but SIGKILL or a power cut
can: so while DVC holds the workspace a note of how it was lies in `layout.QUEUEING_NOTE`, and
the next sweep or LOSO that finds the note compares, says how to restore what differs, and queues
nothing until it is restored. A user's stash is never dropped or popped here.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from harfusion import layout
from harfusion.errors import HarfusionError

DVC_STASH_MESSAGE = "dvc-exp:"  # how DVC's queue entries begin (its own, never a user's)


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise HarfusionError(f"`git {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class Snapshot:
    """What `dvc exp run --queue` touches: HEAD, `git stash`, and each tracked file with changes
    (its status letters, its blob in the index, a hash of its content on disk)."""

    branch: str | None  # the branch HEAD is on; None when detached
    commit: str
    stash: tuple[tuple[str, str], ...]  # (commit, message), newest first
    changes: tuple[tuple[str, str, str | None, str | None], ...]  # path, XY, index, disk

    @classmethod
    def take(cls) -> Snapshot:
        head = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], capture_output=True, text=True)
        stash = git("log", "-g", "--format=%H%x00%gs", "refs/stash", "--") if _has_stash() else ""
        return cls(
            branch=head.stdout.strip().removeprefix("refs/heads/") or None,
            commit=git("rev-parse", "HEAD").strip(),
            stash=tuple(_entry(line) for line in stash.splitlines()),
            changes=_changes(),
        )

    @classmethod
    def load(cls, data: dict) -> Snapshot:
        return cls(
            data["branch"],
            data["commit"],
            tuple((commit, message) for commit, message in data["stash"]),
            tuple((path, xy, index, disk) for path, xy, index, disk in data["changes"]),
        )


def _entry(line: str) -> tuple[str, str]:
    commit, _, message = line.partition("\0")
    return commit, message


def _has_stash() -> bool:
    found = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", "refs/stash"], capture_output=True
    )
    return found.returncode == 0


def _changes() -> tuple[tuple[str, str, str | None, str | None], ...]:
    fields = git("status", "--porcelain=v1", "-z", "-uno").split("\0")
    status: dict[str, str] = {}
    while fields and fields[0]:
        entry = fields.pop(0)
        status[entry[3:]] = entry[:2]
        if entry[0] in "RC":  # a rename's or copy's source follows; it changed too
            status[fields.pop(0)] = entry[:2]
    if not status:
        return ()
    staged = {}
    for line in git("ls-files", "-s", "-z", "--", *status).split("\0"):
        if line:
            info, path = line.split("\t", 1)
            staged[path] = info.split()[1]
    return tuple(
        (path, xy, staged.get(path), _content_hash(Path(path)))
        for path, xy in sorted(status.items())
    )


def _content_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def what_differs(before: Snapshot, now: Snapshot) -> str | None:
    """How `now` differs from `before`, and the git commands that bring `before` back (a user's
    stash entry is popped by those commands, never here); None when nothing differs."""
    if now == before:
        return None
    new = len(now.stash) - len(before.stash)
    added = now.stash[:new] if new > 0 and now.stash[new:] == before.stash else ()
    if now.commit != before.commit or (now.stash != before.stash and not added):
        # Not DVC's doing: it puts back the very commit it detached at, and only adds to stash.
        return (
            "HEAD or `git stash` changed since in other ways, so there is nothing certain to "
            "restore; look for your changes with `git stash list` and `git status`"
        )
    said: list[str] = []
    steps: list[str] = []
    yours = [entry for entry in added if not entry[1].startswith(DVC_STASH_MESSAGE)]
    paths = sorted({c[0] for c in set(now.changes) ^ set(before.changes)})
    if paths:
        said.append(f"changed {', '.join(paths[:3])}{' …' if len(paths) > 3 else ''}")
        if yours or not before.changes:  # what is on disk now is DVC's, not yours
            steps.append("git reset --hard")
    if before.branch and now.branch != before.branch:
        said.append(f"HEAD detached from {before.branch}")
        steps.append(f"git checkout {before.branch}")
    for index, (_, message) in enumerate(added):  # each step below acts on the newest entry
        if message.startswith(DVC_STASH_MESSAGE):
            said.append(f"stash@{{{index}}} is DVC's queue entry, not yours")
            steps.append("git stash drop")
        else:
            said.append(f"your uncommitted changes are in stash@{{{index}}} ({message!r})")
            steps.append("git stash pop --index")
    restore = f"; restore with `{' && '.join(steps)}`" if steps else ""
    return ", ".join(said) + restore


@contextmanager
def held_by_dvc(who: str, what: str) -> Generator[Snapshot]:
    """While DVC queues from the workspace: a note of how it was (a SIGKILL leaves the note for
    the next run); afterwards a check that DVC put everything back."""
    before = Snapshot.take()
    note = layout.QUEUEING_NOTE
    note.parent.mkdir(parents=True, exist_ok=True)
    payload = {"command": who, "queueing": what, "pid": os.getpid(), "before": asdict(before)}
    note.write_text(json.dumps(payload))
    try:
        yield before
    finally:
        differs = what_differs(before, Snapshot.take())
        if differs is None:
            note.unlink(missing_ok=True)
    if differs is not None:
        raise HarfusionError(f"{what} left your workspace changed: {differs} ({_unless()})")


def check_no_leftovers() -> None:
    """Before queueing: refuse while a killed queueing's note shows the workspace changed."""
    note = layout.QUEUEING_NOTE
    try:
        payload = json.loads(note.read_text())
        before = Snapshot.load(payload["before"])
    except FileNotFoundError:
        return
    except (ValueError, KeyError, TypeError):  # a note cut short by the kill: nothing to compare
        note.unlink(missing_ok=True)
        return
    differs = what_differs(before, Snapshot.take())
    if differs is None:
        note.unlink()
        return
    raise HarfusionError(
        f"an earlier `harfusion {payload['command']}` was killed while {payload['queueing']} "
        f"(pid {payload['pid']}): {differs}; then run again ({_unless()})"
    )


def _unless() -> str:
    return f"if the workspace is as you want it, delete {layout.QUEUEING_NOTE}"
