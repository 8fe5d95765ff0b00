"""Classify photos from the command line, exactly as the Classify page does.

    python -m core.classify [--model PATH] [--json] FILE...

Each file goes through the page's path: decoding (size and format checks), the model,
its card's temperature and its "is this one of my classes" check. With ``--json`` each
file gives one line ``{"file", "label", "probability", "known"}``, or ``{"file", "error"}``
for a file that is not a readable photo; the others still print. The exit code is 0 when
every file got its line, error lines included.
"""
from __future__ import annotations

import json
import sys

from core import cli, fmt
from core.inference import photos, served


def main(argv: list[str] | None = None) -> int:
    args = cli.predictor_args("python -m core.classify", __doc__,
                              "a .keras image model (default: the Classify page's default)", "FILE", argv)
    model = photos.load(args.model or served.default_entry("image").model_path)
    for path in args.files:
        result = photos.classify_photo(model, path, path, k=1)
        if not result.ok:
            # the message starts with the file name already; JSON carries it separately
            message = result.error.removeprefix(f"{path}: ")
            print(json.dumps({"file": path, "error": message}) if args.json else f"{path}: error: {message}")
        else:
            label, p = result.top[0]
            known = result.known
            if args.json:
                print(json.dumps({"file": path, "label": label, "probability": p, "known": known}))
            elif known is False:
                print(f"{path}: doesn't look like any of: {', '.join(model.classes)} "
                      f"(closest {label} at {fmt.pct(p, 1)})")
            else:
                print(f"{path}: {label} ({fmt.pct(p, 1)})")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
