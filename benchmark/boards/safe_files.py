"""Files written inside one output folder without ever following a link out of it.

The board writes ``NAME.md``, ``NAME.html`` and ``NAME-plots/*.png`` into ``--out``. A symbolic
link planted there (``NAME.md -> ~/.bashrc``, ``NAME-plots -> /etc``) would make a plain
``write_text`` write through it. Here every step below the output folder is taken relative to
an open folder descriptor with ``O_NOFOLLOW``: a sub-folder that is a link is refused, a file
that is a link is refused, and each file is written to a fresh temporary name (``O_EXCL``) and
renamed over its target, so a link swapped in between the check and the write is replaced,
never followed. The output folder itself is the user's choice and may be a link.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path


class UnsafePathError(ValueError):
    """A path the board would write is a symbolic link (or not a plain file / folder)."""


def _refuse(path: Path, what: str) -> UnsafePathError:
    target = ""
    try:
        target = f" -> {os.readlink(path)}"
    except OSError:
        pass
    return UnsafePathError(f"{path}{target} is {what}; the board writes only plain files and folders inside "
                           f"its output folder and never follows a link: remove it or choose another --out")


def _open_folder(parent_fd: int, name: str, shown: Path) -> int:
    """A descriptor on the plain folder ``name`` inside ``parent_fd`` (created if missing)."""
    try:
        os.mkdir(name, 0o755, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError as error:  # ELOOP: a link; ENOTDIR: a file
        raise _refuse(shown, "a symbolic link" if os.path.islink(shown) else "not a folder") from error


def _write_at(folder_fd: int, name: str, data: bytes, shown: Path) -> None:
    try:
        info = os.lstat(name, dir_fd=folder_fd)
    except FileNotFoundError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise _refuse(shown, "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a plain file")
    temporary = f".{name}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=folder_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        # rename replaces a link that appeared since the check; it never writes through one
        os.replace(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        try:
            os.unlink(temporary, dir_fd=folder_fd)
        except OSError:
            pass
        raise


def write_inside(out_dir: Path, relative: str, data: bytes | str) -> Path:
    """Write ``data`` to ``out_dir/relative`` (``relative``: plain names joined by ``/``, no ``..``),
    creating its folders, following no link below ``out_dir``; the path written."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePathError(f"{relative!r} is not a plain relative path inside {out_dir}")
    if isinstance(data, str):
        data = data.encode("utf-8")
    out_dir.mkdir(parents=True, exist_ok=True)
    fds = [os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        shown = out_dir
        for part in parts[:-1]:
            shown = shown / part
            fds.append(_open_folder(fds[-1], part, shown))
        _write_at(fds[-1], parts[-1], data, out_dir / relative)
    finally:
        for fd in fds:
            os.close(fd)
    return out_dir / relative
