"""Write outputs so a reader never sees half of one: build aside (in the project's temporaries
folder, `layout.TEMPORARIES`), then rename into place."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

from harfusion.layout import TEMPORARIES


@contextmanager
def atomic_path(target: str | Path) -> Generator[Path]:
    """Yield a temporary path (file or directory) that replaces `target` on success.

    On any exception the temporary is removed and `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    home, name = _temporary_home(target)
    # A process killed mid-write (SIGKILL runs no cleanup) leaves its temporary behind; one
    # writer per output in a workspace, so any earlier one is garbage by now.
    ours = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp")  # mkdtemp's names
    for stale in (p for p in home.iterdir() if ours.fullmatch(p.name)):
        remove(stale)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=home))
    shutil.rmtree(tmp)  # the caller decides whether it becomes a file or a directory
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            old = home / f".{name}.old"
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists() or tmp.is_symlink():
            remove(tmp)


def _temporary_home(target: Path) -> tuple[Path, str]:
    """The project's temporaries folder when `target` is in the project (the working directory)
    on the same file system, named by its path there; otherwise beside `target`."""
    home = Path(os.path.abspath(TEMPORARIES))
    parent = Path(os.path.abspath(target.parent))
    in_project = home.is_dir() and parent.is_relative_to(home.parent)
    if in_project and home.stat().st_dev == parent.stat().st_dev:  # a rename cannot cross it
        inside = Path(os.path.abspath(target)).relative_to(home.parent)
        return home, "%".join(inside.parts)
    return target.parent, target.name


def remove(path: Path) -> None:
    """Delete a file, link or folder tree."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
