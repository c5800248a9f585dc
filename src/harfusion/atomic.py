"""Write outputs so a reader never sees half of one: build beside the target, then rename."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | Path) -> Generator[Path]:
    """Yield a temporary sibling path (file or directory) that replaces `target` on success.

    On any exception the temporary is removed and `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A process killed mid-write (SIGKILL runs no cleanup) leaves its temporary behind; one
    # writer per output in a workspace, so any earlier one is garbage by now.
    ours = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")  # mkdtemp's names
    for stale in (p for p in target.parent.iterdir() if ours.fullmatch(p.name)):
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    shutil.rmtree(tmp)  # the caller decides whether it becomes a file or a directory
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
