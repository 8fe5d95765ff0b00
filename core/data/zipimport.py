"""Safe extraction of an uploaded ``.zip`` of class folders.

An upload is untrusted. Before anything is read, the archive's end record is parsed
by hand to count its entries and the size of its central directory, so a zip of a
million empty entries is refused without building a million objects. Then the whole
archive is refused when any entry could write outside the extraction folder (``../``,
an absolute path, a drive letter), is a symbolic link, is encrypted, uses a compression
method we cannot read, or when the archive holds too many files or bytes. Sizes are also
counted while decompressing, since the sizes a zip declares can lie (zip bombs), and a
damaged entry (bad CRC, truncated data) refuses the archive with one sentence. Files
that are not images (opened with the photo loader) and system clutter (``__MACOSX/``,
dot files) are skipped and listed. On any refusal the extraction folder is removed.
"""
from __future__ import annotations

import lzma
import shutil
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from core.data.photo import IMAGE_SUFFIXES, check_photo
from core.errors import StudioError

MAX_BYTES = 500 * 1024 * 1024  # uncompressed total
MAX_FILES = 20_000
MAX_ENTRIES = MAX_FILES + 2_000  # files plus folder entries
CENTRAL_BYTES_PER_ENTRY = 300  # 46 bytes of header plus a generous name
MAX_NAME_BYTES = 255  # per path component, what file systems allow
METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
           zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}
CHUNK = 1 << 20

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")


class ZipDataError(StudioError):
    """An archive that is refused; the message says why."""


@dataclass
class ZipReport:
    root: Path  # the folder holding the class folders
    kept: list[str] = field(default_factory=list)  # image paths relative to root
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason)
    written: int = 0  # bytes written, images kept or not

    @property
    def classes(self) -> dict[str, int]:
        """Images per class folder (the first folder under root)."""
        counts: dict[str, int] = {}
        for name in self.kept:
            parts = PurePosixPath(name).parts
            if len(parts) >= 2:
                counts[parts[0]] = counts.get(parts[0], 0) + 1
        return dict(sorted(counts.items()))


def central_directory(handle: BinaryIO) -> tuple[int, int]:
    """(entries, central directory bytes) from the archive's end record, reading only its tail."""
    handle.seek(0, 2)
    size = handle.tell()
    tail_len = min(size, _EOCD.size + 0xFFFF)
    handle.seek(size - tail_len)
    tail = handle.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        raise ZipDataError("not a zip file (or a damaged one)")
    _, _, _, _, entries, cd_size, _, _ = _EOCD.unpack_from(tail, at)
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:  # zip64: the real numbers are further back
        locator_at = size - tail_len + at - _ZIP64_LOCATOR.size
        if locator_at < 0:
            raise ZipDataError("not a zip file (or a damaged one)")
        handle.seek(locator_at)
        sig, _, eocd64_at, _ = _ZIP64_LOCATOR.unpack(handle.read(_ZIP64_LOCATOR.size))
        if sig != b"PK\x06\x07" or eocd64_at > size - _ZIP64_EOCD.size:
            raise ZipDataError("not a zip file (or a damaged one)")
        handle.seek(eocd64_at)
        record = handle.read(_ZIP64_EOCD.size)
        if len(record) < _ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
            raise ZipDataError("not a zip file (or a damaged one)")
        *_, entries, cd_size, _ = _ZIP64_EOCD.unpack(record)
    handle.seek(0)
    return entries, cd_size


def _safe_name(info: zipfile.ZipInfo) -> PurePosixPath:
    """The entry's path, or ZipDataError when it could land outside the folder or cannot be read."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ZipDataError(f"refused: entry {info.filename!r} has an absolute path")
    if ".." in path.parts:
        raise ZipDataError(f"refused: entry {info.filename!r} points outside the archive's folder")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ZipDataError(f"refused: entry {info.filename!r} is a symbolic link")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in path.parts):
        raise ZipDataError(f"refused: entry {info.filename[:60]!r}... has a name over {MAX_NAME_BYTES} bytes")
    if info.flag_bits & 0x1:
        raise ZipDataError(f"refused: entry {info.filename!r} is encrypted; upload a zip without a password")
    if info.compress_type not in METHODS:
        raise ZipDataError(f"refused: entry {info.filename!r} uses compression method {info.compress_type}, "
                           f"which we cannot read; re-create the zip with the standard (deflate) method")
    return path


def _is_clutter(path: PurePosixPath) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in path.parts)


def extract_zip(source: str | Path | BinaryIO, dest: str | Path, *, max_bytes: int = MAX_BYTES,
                max_files: int = MAX_FILES) -> ZipReport:
    """Extract the images of ``source`` (a path or a binary file object) into ``dest``.

    ``dest`` must be empty or absent. On any refusal nothing is left in it.
    """
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ZipDataError(f"{dest} is not empty")
    own = isinstance(source, str | Path)
    try:
        handle = open(source, "rb") if own else source  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ZipDataError(f"cannot read the archive ({exc.strerror})") from None
    try:
        entries, cd_size = central_directory(handle)
        if entries > max_files + (MAX_ENTRIES - MAX_FILES):
            raise ZipDataError(f"refused: {entries} entries in the archive, the limit is {max_files} files")
        if cd_size > (max_files + (MAX_ENTRIES - MAX_FILES)) * CENTRAL_BYTES_PER_ENTRY:
            raise ZipDataError(f"refused: the archive's directory takes {cd_size / 1e6:.1f} MB, "
                               f"too much for {max_files} files")
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, ValueError, EOFError, OSError):
            raise ZipDataError("not a zip file (or a damaged one)") from None
        dest.mkdir(parents=True, exist_ok=True)
        try:
            with archive:
                return _extract(archive, dest.resolve(), max_bytes, max_files)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
    finally:
        if own:
            handle.close()


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
        _copy_entry(archive, info, target, report, max_bytes)
        reason = check_photo(target)
        if reason is None:
            report.kept.append(path.as_posix())
        else:
            target.unlink()
            report.skipped.append((info.filename, "not a readable image"))
    if not report.kept:
        raise ZipDataError("the archive holds no image files (expected one folder per class)")
    _find_root(report, dest)
    return report


def _copy_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, report: ZipReport,
                max_bytes: int) -> None:
    """Decompress one entry, counting bytes: a size lie or a damaged entry refuses the archive."""
    entry_bytes = 0
    try:
        with archive.open(info) as src, open(target, "wb") as out:
            while block := src.read(CHUNK):
                entry_bytes += len(block)
                report.written += len(block)
                if entry_bytes > info.file_size:
                    raise ZipDataError(f"refused: entry {info.filename!r} holds more than the "
                                       f"{info.file_size} bytes it declares")
                if report.written > max_bytes:
                    raise ZipDataError(f"refused: more than {max_bytes / 1e6:.0f} MB once decompressed")
                out.write(block)
    except ZipDataError:
        raise
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError,
            RuntimeError, ValueError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile) and exc.errno:
            raise ZipDataError(f"cannot write {target.name} ({exc.strerror})") from None
        reason = " ".join(str(exc).split())[:100] or type(exc).__name__
        raise ZipDataError(f"refused: the archive is damaged at entry {info.filename!r} ({reason})") from None


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
