"""Safe extraction of an uploaded ``.zip`` of class folders.

An upload is untrusted: the archive is refused as a whole when any entry could
write outside the extraction folder (``../``, an absolute path, a drive letter),
is a symbolic link, or when it holds too many entries or too many bytes. Sizes
are counted while decompressing, since the sizes a zip declares can lie (zip
bombs). Files that are not images (checked by content with Pillow) and system
clutter (``__MACOSX/``, dot files) are skipped and listed, not extracted.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image

from core import config
from core.data.photo import IMAGE_SUFFIXES
from core.errors import StudioError

MAX_BYTES = 500 * 1024 * 1024  # uncompressed total
MAX_FILES = 20_000
CHUNK = 1 << 20


class ZipDataError(StudioError):
    """An archive that is refused; the message says why."""


@dataclass
class ZipReport:
    root: Path  # the folder holding the class folders
    kept: list[str] = field(default_factory=list)  # image paths relative to root
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason)

    @property
    def classes(self) -> dict[str, int]:
        """Images per class folder (the first folder under root)."""
        counts: dict[str, int] = {}
        for name in self.kept:
            parts = PurePosixPath(name).parts
            if len(parts) >= 2:
                counts[parts[0]] = counts.get(parts[0], 0) + 1
        return dict(sorted(counts.items()))


def _safe_name(info: zipfile.ZipInfo) -> PurePosixPath:
    """The entry's path, or ZipDataError when it could land outside the folder."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ZipDataError(f"refused: entry {info.filename!r} has an absolute path")
    if ".." in path.parts:
        raise ZipDataError(f"refused: entry {info.filename!r} points outside the archive's folder")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ZipDataError(f"refused: entry {info.filename!r} is a symbolic link")
    return path


def _is_clutter(path: PurePosixPath) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in path.parts)


def _is_image(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for a non-image
        return False


def slug(name: str, limit: int = 40) -> str:
    """A file name reduced to letters, digits, '-' and '_' (the client chooses upload names)."""
    stem = PurePosixPath(name.replace("\\", "/")).name.rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:limit] or "upload"


def upload_folder(name: str, data: bytes) -> Path:
    """Where the server unpacks an uploaded zip: a slug of its name and a hash of its bytes."""
    root = (config.data_root() / "uploads").resolve()
    dest = (root / f"{slug(name)}-{hashlib.sha256(data).hexdigest()[:12]}").resolve()
    if dest.parent != root:
        raise ZipDataError("that upload name cannot be used")
    return dest


def extract_zip(source, dest: str | Path, *, max_bytes: int = MAX_BYTES,
                max_files: int = MAX_FILES) -> ZipReport:
    """Extract the images of ``source`` (a path or a binary file object) into ``dest``.

    ``dest`` must be empty or absent. On any refusal nothing is left in it.
    """
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ZipDataError(f"{dest} is not empty")
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise ZipDataError("not a zip file (or a damaged one)") from None
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with archive:
            report = _extract(archive, dest.resolve(), max_bytes, max_files)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return report


def _extract(archive: zipfile.ZipFile, dest: Path, max_bytes: int, max_files: int) -> ZipReport:
    infos = archive.infolist()
    files = [i for i in infos if not i.is_dir()]
    if len(files) > max_files:
        raise ZipDataError(f"refused: {len(files)} files in the archive, the limit is {max_files}")
    paths = [(info, _safe_name(info)) for info in infos]  # checks every entry before writing any
    declared = sum(i.file_size for i in files)
    if declared > max_bytes:
        raise ZipDataError(f"refused: {declared / 1e6:.1f} MB uncompressed, "
                           f"the limit is {max_bytes / 1e6:.1f} MB")
    report = ZipReport(root=dest)
    written = 0
    for info, path in paths:
        if info.is_dir():
            continue
        if _is_clutter(path):
            report.skipped.append((info.filename, "system file"))
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            report.skipped.append((info.filename, "not an image file"))
            continue
        target = dest.joinpath(*path.parts)
        if dest not in target.resolve().parents:  # belt and braces after _safe_name
            raise ZipDataError(f"refused: entry {info.filename!r} points outside the archive's folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(target, "wb") as out:
            while block := src.read(CHUNK):
                written += len(block)
                if written > max_bytes:  # the declared sizes lied
                    raise ZipDataError(f"refused: more than {max_bytes / 1e6:.0f} MB once decompressed")
                out.write(block)
        if _is_image(target):
            report.kept.append(path.as_posix())
        else:
            target.unlink()
            report.skipped.append((info.filename, "not a readable image"))
    if not report.kept:
        raise ZipDataError("the archive holds no image files (expected one folder per class)")
    _find_root(report, dest)
    return report


def _find_root(report: ZipReport, dest: Path) -> None:
    """Unwrap single top folders (``flowers/daisy/x.jpg``) so the root holds the classes."""
    kept = [PurePosixPath(n) for n in report.kept]
    root = dest
    while len({p.parts[0] for p in kept}) == 1 and all(len(p.parts) > 2 for p in kept):
        root = root / kept[0].parts[0]
        kept = [PurePosixPath(*p.parts[1:]) for p in kept]
    report.root, report.kept = root, [p.as_posix() for p in kept]


def class_root(folder: str | Path) -> Path:
    """The folder holding the classes of an extracted archive: single wrapper folders are unwrapped."""
    folder = Path(folder)
    while True:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        dirs = [p for p in entries if p.is_dir()]
        if len(entries) == 1 and len(dirs) == 1 and any(p.is_dir() for p in dirs[0].iterdir()):
            folder = dirs[0]
        else:
            return folder
