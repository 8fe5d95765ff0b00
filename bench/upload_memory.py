"""Peak memory of the worst uploads (issue 15): each case runs in a fresh process.

    python -m bench.upload_memory [--entries 1500000]

Prints, per case, what happened (accepted or the refusal) and the process's peak
resident memory above what it held before the upload (Linux ``VmHWM``, reset after the
imports through ``/proc/self/clear_refs``, minus the RSS then), plus seconds. Inputs
are generated in a temp folder.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
from pathlib import Path
from core.data import photo, uploads
from core.errors import StudioError

def rss():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096

def hwm():
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM"))
    return int(line.split()[1]) * 1024

kind, path, quota = sys.argv[1], sys.argv[2], int(sys.argv[3])
Path("/proc/self/clear_refs").write_text("5")  # the peak so far (imports) is forgotten
before, start = rss(), time.monotonic()
try:
    if kind == "photo":
        img = photo.load_photo(path)
        outcome = f"accepted, {img.size[0]}x{img.size[1]} RGB"
    else:
        up, _ = uploads.import_zip(Path(path), Path(path).name, quota=quota)
        outcome = f"accepted, {sum(up.classes.values())} images, {up.size_bytes / 2**20:.0f} MiB on disk"
except StudioError as exc:
    outcome = f"refused: {exc}"
peak = hwm()
left = sum(1 for _ in Path(uploads.config.uploads_root()).rglob("*")) if kind != "photo" else 0
print(json.dumps({"outcome": outcome, "peak_above_start_mib": (peak - before) / 2**20,
                  "seconds": time.monotonic() - start, "files_left": left}))
"""


def png_16bit(path: Path, side: int) -> None:
    arr = np.repeat(np.linspace(0, 65535, side, dtype=np.uint16)[:, None], side, axis=1)
    Image.fromarray(arr).save(path, "PNG")


def png_rgba(path: Path, side: int) -> None:
    Image.new("RGBA", (side, side), (10, 200, 30, 128)).save(path, "PNG")


def zip_bomb_of_pngs(path: Path, per_class: int, side: int) -> None:
    """Valid, uncompressed PNGs that deflate to almost nothing inside the zip."""
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (0, 0, 0)).save(buf, "PNG", compress_level=0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for k in range(2):
            for i in range(per_class):
                archive.writestr(f"bomb/c{k}/{i}.png", buf.getvalue())


def zip_of_empty_entries(path: Path, entries: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(entries):
            archive.writestr(f"e/{i}", b"")


def run_case(kind: str, path: Path, env: dict, quota: int = 4096 * 2**20) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path), str(quota)], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_500_000, help="entries in the empty-entry zip")
    args = parser.parse_args()
    import os

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = os.environ | {"CNN_STUDIO_RUNS": str(tmp / "runs"), "CNN_STUDIO_DATA": str(tmp / "data"),
                            "PYTHONPATH": str(ROOT)}
        cases = []
        png_16bit(tmp / "grey16.png", 7680)
        cases.append(("16-bit grey PNG 7680x7680 (Classify)", "photo", tmp / "grey16.png", None))
        png_rgba(tmp / "rgba.png", 6700)
        cases.append(("RGBA PNG 6700x6700 (45 Mpx, Classify)", "photo", tmp / "rgba.png", None))
        zip_bomb_of_pngs(tmp / "bomb.zip", 100, 800)
        cases.append(("zip of 200 uncompressed 800x800 PNGs (366 MiB of PNG)", "zip", tmp / "bomb.zip", None))
        cases.append(("the same zip, quota 100 MB", "zip", tmp / "bomb.zip", 100 * 2**20))
        started = time.monotonic()
        zip_of_empty_entries(tmp / "empty.zip", args.entries)
        print(f"(built a zip of {args.entries:,} empty entries in {time.monotonic() - started:.0f} s)")
        cases.append((f"zip of {args.entries:,} empty entries", "zip", tmp / "empty.zip", None))
        print(f"{'case':58} {'file':>10} {'peak MiB':>9} {'s':>6}  outcome")
        for title, kind, path, quota in cases:
            result = run_case(kind, path, env, quota if quota is not None else 4096 * 2**20)
            size = path.stat().st_size / 2**20
            print(f"{title:58} {size:8.2f}MB {result['peak_above_start_mib']:9.0f} {result['seconds']:6.1f}  "
                  f"{result['outcome'][:110]}"
                  + (f" (files left: {result['files_left']})" if kind == "zip" else ""))
            if kind == "zip" and not result["outcome"].startswith("accepted"):
                assert result["files_left"] == 0
            import shutil

            shutil.rmtree(tmp / "uploads", ignore_errors=True)


if __name__ == "__main__":
    main()
