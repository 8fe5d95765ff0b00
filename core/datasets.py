"""``python -m core.datasets import ZIP [--name NAME] | list | remove NAME``: uploaded data sets.

Runs exactly what the Train page runs (core.data.uploads) on ``CNN_STUDIO_UPLOADS``, so
an import can be scripted and tested. Exit 0 on success; otherwise one sentence on
stderr and a non-zero exit (core.cli), never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core import cli, config
from core.data import uploads


def _describe(upload: uploads.Upload) -> str:
    if upload.error:
        return f"{upload.name}  {upload.error}"
    classes = upload.classes
    listing = ", ".join(f"{c} {n}" for c, n in classes.items())
    used = time.strftime("%Y-%m-%d %H:%M", time.localtime(upload.last_used))
    return (f"{upload.name}  {sum(classes.values())} images in {len(classes)} classes ({listing})  "
            f"{upload.size_bytes / 2**20:.1f} MB  last used {used}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.datasets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="unpack a .zip of class folders into the uploads folder")
    imp.add_argument("zip", help="the .zip file: one folder of images per class")
    imp.add_argument("--name", help="the data set's name (default: the file's name and its hash)")
    sub.add_parser("list", help="every uploaded data set with its classes and size")
    rem = sub.add_parser("remove", help="delete one uploaded data set")
    rem.add_argument("name")
    args = parser.parse_args(argv)

    if args.command == "import":
        path = Path(args.zip)
        if not path.is_file():
            raise uploads.UploadError(f"no file {args.zip}")
        upload, report = uploads.import_zip(path, path.name, name=args.name)
        if report is None:
            print(f"already imported: {_describe(upload)}")
        else:
            print(f"imported {_describe(upload)}")
            if report.skipped:
                print(f"left out {len(report.skipped)} entries (not images or system files)")
        print(f"train on it with: python -m core.train transfer --data {upload.root}")
        return 0
    if args.command == "remove":
        uploads.remove(args.name)
        print(f"removed {args.name}")
        return 0
    root = config.uploads_root()
    found = uploads.list_uploads(root)
    quota = config.uploads_quota_bytes()
    for upload in found:
        print(_describe(upload))
    print(f"{len(found)} data set(s) in {root}: {uploads.usage(root) / 2**20:.1f} MB "
          f"of a {quota / 2**20:.0f} MB quota")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
