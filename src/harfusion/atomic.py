"""Write outputs so a reader never sees half of one: build aside (in the project's temporaries
folder, `layout.TEMPORARIES`), then rename into place.

A temporary's name carries its writer's process id, `.<target>.<pid>.<random>.tmp`: two writers
of one target at once (two `harfusion compare`) each build their own, and a writer clears only
the temporaries whose process is gone (SIGKILL runs no cleanup), never a live one's.
"""

from __future__ import annotations

import contextlib
import errno
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
    for stale in abandoned(home, name):
        remove(stale)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=home))
    shutil.rmtree(tmp)  # the caller decides whether it becomes a file or a directory
    try:
        yield tmp
        if tmp.is_dir() and not tmp.is_symlink():  # whatever `target` is by now
            _replace_folder(tmp, target)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists() or tmp.is_symlink():
            remove(tmp)


def _replace_folder(tmp: Path, target: Path) -> None:
    """Put the folder `tmp` where the folder `target` is. Two renames, since a folder cannot
    replace a non-empty one in one; when another writer's folder lands in between, move that
    one aside as well (the last writer wins, as with a file)."""
    old = tmp.with_name(tmp.name.removesuffix(".tmp") + ".old.tmp")
    while True:
        with contextlib.suppress(FileNotFoundError):
            target.rename(old)
        try:
            tmp.rename(target)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        finally:
            if old.exists() or old.is_symlink():
                remove(old)


def abandoned(home: Path, name: str | None = None) -> list[Path]:
    """The temporaries in `home` (of the target `name`, or of any) whose writer is dead."""
    target = re.escape(name) if name is not None else r".+"
    pattern = re.compile(rf"\.{target}\.(\d+)\.[a-z0-9_]{{8}}(\.old)?\.tmp")
    found = []
    for path in home.iterdir() if home.is_dir() else []:
        match = pattern.fullmatch(path.name)
        if match and not _alive(int(match[1])):
            found.append(path)
    return sorted(found)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:  # no such pid can exist
        return False
    return True


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
