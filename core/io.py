"""Small file helpers every feature shares: atomic writes, tolerant JSON, hashes."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write then rename, so readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value):
    # numpy scalars and arrays from Keras logs
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


class JsonFileError(ValueError):
    """A JSON file that exists but cannot be read as the object it should hold."""


def read_json(path: str | Path, default: Any = None) -> dict:
    """The JSON object in ``path``; ``default`` when the file is absent.

    Unreadable bytes, invalid JSON or a value that is not an object raise
    ``JsonFileError`` with a short reason, so a caller can say "damaged: reason".
    """
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return default
    except IsADirectoryError:
        raise JsonFileError(f"{path.name} is a folder") from None
    except OSError as exc:
        raise JsonFileError(f"{path.name} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise JsonFileError(f"{path.name} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise JsonFileError(f"{path.name} is not valid JSON (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise JsonFileError(f"{path.name} holds a {type(data).__name__}, not a JSON object")
    return data
