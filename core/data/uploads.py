"""Uploaded data sets: the folder of zips users gave us, unpacked, with a quota.

Each upload is one folder under ``config.uploads_root()`` (``CNN_STUDIO_UPLOADS``)::

    uploads/
      roses-and-tulips-1a2b3c4d5e6f/   a slug of the upload's name + its content hash
        upload.json                    name, source file, sha256, sizes, classes, created, used
        data/...                       the archive's images (class folders, maybe wrapped)

The name a browser sends is never used as a path: it is reduced to a slug. The folder
is created here, under the uploads root, and checked to lie inside it. Extraction goes
to a hidden ``.incoming-*`` folder that is renamed into place only when the data set is
accepted, so a refusal (bad archive, too few images, quota) leaves nothing behind. The
whole uploads folder stays under ``config.uploads_quota_bytes()``; when an import would
pass it, the refusal names the data set unused the longest.

``python -m core.datasets`` runs exactly these functions from the command line.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from core import config
from core.data import folders, zipimport
from core.errors import StudioError
from core.io import JsonFileError, atomic_write_json, read_json, sha256_file

META_FILE = "upload.json"
DATA_DIR = "data"
INCOMING = ".incoming-"
STALE_INCOMING_S = 24 * 3600  # an import that died this long ago is cleaned up
SLUG_CHARS = 40


class UploadError(StudioError):
    """An upload that is refused, or a data set that cannot be found; the message says why."""


@dataclass
class Upload:
    """One uploaded data set, as listed."""

    name: str
    path: Path  # the upload's folder
    meta: dict = field(default_factory=dict)
    error: str | None = None  # "damaged: ..." when upload.json cannot be read

    @property
    def root(self) -> Path:
        """The folder holding the class folders (what training takes as --data)."""
        return self.path / self.meta.get("root", DATA_DIR)

    size_bytes = property(lambda self: int(self.meta.get("bytes") or folder_bytes(self.path)))
    classes = property(lambda self: dict(self.meta.get("classes") or {}))
    created = property(lambda self: float(self.meta.get("created") or _mtime(self.path)))
    last_used = property(lambda self: float(self.meta.get("used") or self.created))
    source = property(lambda self: str(self.meta.get("source", "")))
    visitor = property(lambda self: self.meta.get("visitor"))


def slug(name: str) -> str:
    """A file name from a browser, reduced to ``[a-z0-9-]``: no folders, no dots, at most 40 characters."""
    base = re.split(r"[\\/]", str(name))[-1]
    base = re.sub(r"\.zip$", "", base, flags=re.IGNORECASE)
    ascii_text = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:SLUG_CHARS].strip("-")
    return text or "upload"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def folder_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (links are not followed)."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def _inside(root: Path, path: Path) -> Path:
    resolved = path.resolve()
    if resolved.parent != root.resolve():
        raise UploadError(f"{path.name!r} is not a data set folder inside {root}")
    return resolved


def _read(path: Path) -> Upload:
    try:
        meta = read_json(path / META_FILE, default={})
        return Upload(path.name, path, meta)
    except JsonFileError as exc:
        return Upload(path.name, path, error=f"damaged: {exc}")


def list_uploads(root: Path | None = None) -> list[Upload]:
    """Every uploaded data set, oldest first."""
    root = root or config.uploads_root()
    if not root.is_dir():
        return []
    found = [_read(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(found, key=lambda u: (u.created, u.name))


def usage(root: Path | None = None) -> int:
    """Bytes the uploads folder takes now, unfinished imports included."""
    root = root or config.uploads_root()
    return folder_bytes(root) if root.is_dir() else 0


def oldest_unused(root: Path | None = None, exclude: str | None = None) -> Upload | None:
    """The data set whose last use (or import) is the oldest."""
    candidates = [u for u in list_uploads(root) if u.name != exclude]
    return min(candidates, key=lambda u: (u.last_used, u.name), default=None)


def get(name: str, root: Path | None = None) -> Upload:
    root = root or config.uploads_root()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,80}", name or ""):
        raise UploadError(f"no uploaded data set called {name!r} (names are letters, digits and dashes)")
    path = root / name
    if not path.is_dir():
        raise UploadError(f"no uploaded data set called {name!r} in {root}")
    _inside(root, path)
    return _read(path)


def remove(name: str, root: Path | None = None, visitor: str | None = None) -> None:
    """Delete one uploaded data set and everything in it.

    With a ``visitor`` (the app served to a network), only a set they uploaded.
    """
    upload = get(name, root)
    if visitor is not None and upload.visitor != visitor:
        raise UploadError(f"{name} was not uploaded by you: only its owner can delete it")
    shutil.rmtree(upload.path)


def mark_used(folder: str | Path, root: Path | None = None) -> None:
    """Record that a run trains on ``folder`` (any path inside an upload); others are ignored."""
    root = (root or config.uploads_root()).resolve()
    folder = Path(folder).resolve()
    if root not in folder.parents:
        return
    upload = root / folder.relative_to(root).parts[0]
    try:
        meta = read_json(upload / META_FILE, default={})
        atomic_write_json(upload / META_FILE, meta | {"used": time.time()})
    except (JsonFileError, OSError):
        pass  # the data set still trains; only its "last used" time is not kept


def _clean_stale(root: Path) -> None:
    for path in root.glob(f"{INCOMING}*"):
        if time.time() - _mtime(path) > STALE_INCOMING_S:
            shutil.rmtree(path, ignore_errors=True)


def _quota_message(used: int, quota: int, root: Path) -> str:
    oldest = oldest_unused(root)
    hint = f": remove a data set first (the one unused the longest is {oldest.name})" if oldest else ""
    return f"the uploads folder holds {used / 2**20:.0f} MB of its {quota / 2**20:.0f} MB quota{hint}"


def _digest(source: str | Path | BinaryIO) -> str:
    if isinstance(source, str | Path):
        try:
            return sha256_file(source)
        except OSError as exc:
            raise UploadError(f"cannot read {Path(source).name} ({exc.strerror})") from None
    import hashlib

    digest = hashlib.sha256()
    source.seek(0)
    while block := source.read(1 << 20):
        digest.update(block)
    source.seek(0)
    return digest.hexdigest()


def import_zip(source: str | Path | BinaryIO, filename: str, *, name: str | None = None,
               visitor: str | None = None, visitor_cap: int | None = None, root: Path | None = None,
               quota: int | None = None,
               min_per_class: int = folders.MIN_PER_CLASS) -> tuple[Upload, zipimport.ZipReport | None]:
    """Unpack an uploaded zip into a new data set under the uploads folder.

    ``filename`` is what the browser (or the command line) called the file: only its slug
    is used. ``name`` chooses the folder name (slugged); by default it is the slug plus
    the archive's hash, and importing the same archive again returns the existing set
    (with no report). Anything refused leaves nothing on disk. With ``visitor_cap``, a
    ``visitor`` who already keeps that many data sets is refused.
    """
    root = (root or config.uploads_root())
    quota = quota if quota is not None else config.uploads_quota_bytes()
    digest = _digest(source)
    folder_name = slug(name) if name else f"{slug(filename)}-{digest[:12]}"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UploadError(f"cannot create the uploads folder {root} ({exc.strerror})") from None
    root = root.resolve()
    _clean_stale(root)
    final = root / folder_name
    _inside(root, final)
    if final.exists():
        existing = _read(final)
        if existing.meta.get("sha256") == digest:
            return existing, None
        raise UploadError(f"a data set called {folder_name} already exists; choose another name or remove it")
    if visitor_cap is not None:
        mine = [u for u in list_uploads(root) if u.visitor == visitor]
        if len(mine) >= visitor_cap:
            raise UploadError(f"you already keep {len(mine)} uploaded data set(s) and the limit is "
                              f"{visitor_cap} per visitor: remove one first")
    used = usage(root)
    room = quota - used
    if room <= 0:
        raise UploadError(_quota_message(used, quota, root))
    incoming = root / f"{INCOMING}{secrets.token_hex(6)}"
    incoming.mkdir()
    _inside(root, incoming)
    try:
        try:
            report = zipimport.extract_zip(source, incoming / DATA_DIR,
                                           max_bytes=min(zipimport.MAX_BYTES, room))
        except zipimport.ZipDataError as exc:
            too_big = "MB uncompressed" in str(exc) or "once decompressed" in str(exc)
            if too_big and room < zipimport.MAX_BYTES:  # the quota, not the archive limit, said no
                raise UploadError(f"the archive unpacks to more than the {room / 2**20:.0f} MB left in the "
                                  f"uploads folder; {_quota_message(used, quota, root)}") from None
            raise
        counts = report.classes
        folders.check_counts(report.root, counts, min_per_class)
        meta = {"name": folder_name, "source": Path(str(filename)).name[:200], "sha256": digest,
                "root": report.root.relative_to(incoming).as_posix(), "classes": counts,
                "images": sum(counts.values()), "skipped": len(report.skipped),
                "bytes": folder_bytes(incoming), "created": time.time(), "visitor": visitor}
        atomic_write_json(incoming / META_FILE, meta)
        try:
            os.rename(incoming, final)
        except OSError:
            raise UploadError(f"a data set called {folder_name} was just created by another upload") from None
        report.root = final / meta["root"]
        return Upload(folder_name, final, meta), report
    finally:
        if incoming.exists():
            shutil.rmtree(incoming, ignore_errors=True)
