"""Finding the files an ingest should read: folders walked recursively, globs applied, junk skipped."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from fnmatch import fnmatch
from pathlib import Path

from covey.rag.types import Skipped
from covey.text import describe_surrogate, printable_path

IGNORED_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache",
                ".pytest_cache", ".tox", ".idea", ".cache"}
BINARY_EXT = {
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".tif", ".tiff", ".heic", ".mp3", ".wav", ".flac",
    ".ogg", ".mp4", ".mkv", ".mov", ".avi", ".webm", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".tar",
    ".whl", ".jar", ".exe", ".dll", ".so", ".dylib", ".o", ".a", ".pyc", ".pyo", ".class", ".bin", ".gguf",
    ".safetensors", ".pt", ".onnx", ".npy", ".npz", ".pkl", ".sqlite", ".db", ".faiss", ".woff", ".woff2",
    ".ttf", ".otf", ".eot", ".iso", ".dmg", ".docx", ".xlsx", ".pptx", ".odt", ".epub",
}


def _matches(rel: str, pattern: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    if pattern.endswith("/**"):
        base = pattern[:-3]
        return rel == base or rel.startswith(base + "/") or fnmatch(rel, pattern[:-1] + "*")
    return fnmatch(rel, pattern) or fnmatch(name, pattern) or fnmatch(rel, pattern.replace("**/", ""))


def discover(
    paths: Iterable[str | Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[Path], list[Skipped]]:
    """Absolute file paths to ingest (sorted, unique) and the paths refused on the way, with reasons.

    Files named explicitly are always taken; files found by walking a folder must match one of
    `include` (when given) and none of `exclude`, matched against the path relative to that folder
    and against the bare file name.
    """
    found: dict[Path, None] = {}
    skipped: list[Skipped] = []
    for raw in paths:
        path = Path(raw).expanduser().absolute()
        if bad := _undecodable(path):
            skipped.append(bad)
        elif not path.exists():
            skipped.append(Skipped(path=str(path), reason="does not exist"))
        elif path.is_dir():
            files, refused = _walk(path, include, exclude)
            found.update(dict.fromkeys(files))
            skipped.extend(refused)
        elif _regular(path):
            found[path] = None
        else:
            skipped.append(Skipped(path=str(path), reason="not a regular file (device, pipe or socket)"))
    unique = list({s.path: s for s in skipped}.values())  # a file named twice is reported once
    return sorted(found), unique


def _undecodable(path: Path) -> Skipped | None:
    """A path whose name is not UTF-8 cannot be stored or cited: it is skipped, named with \\xNN escapes."""
    problem = describe_surrogate(str(path))
    if not problem:
        return None
    return Skipped(path=printable_path(path),
                   reason=f"the file name is not UTF-8 ({problem.removesuffix(' is not UTF-8')}); rename it to "
                   "index it (e.g. `convmv -f latin1 -t utf8 --notest FILE`)")


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _walk(root: Path, include: Sequence[str], exclude: Sequence[str]) -> tuple[list[Path], list[Skipped]]:
    files: list[Path] = []
    skipped: list[Skipped] = []

    def on_error(exc: OSError) -> None:
        skipped.append(Skipped(path=str(exc.filename), reason=f"cannot list folder: {exc.strerror}"))

    for folder, dirs, names in os.walk(root, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS and not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if include and not any(_matches(rel, g) for g in include):
                continue
            if any(_matches(rel, g) for g in exclude):
                continue
            if bad := _undecodable(path):
                skipped.append(bad)
            elif path.suffix.lower() in BINARY_EXT:
                skipped.append(Skipped(path=str(path), reason=f"binary file ({path.suffix.lower()}), not indexed"))
            elif not path.exists():
                skipped.append(Skipped(path=str(path), reason="broken symbolic link"))
            elif not _regular(path):
                skipped.append(Skipped(path=str(path), reason="not a regular file (device, pipe or socket)"))
            else:
                files.append(path)
    return files, skipped
