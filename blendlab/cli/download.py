"""``blendlab download``: fetch a real preset's weights into the cache and print their paths.

May import: download, models, blendlab.cli.parser.
"""

from __future__ import annotations

from pathlib import Path

from .parser import usage

__all__ = ["run_download"]


def run_download(args) -> list[Path]:
    from ..download import ensure_file
    from ..models import PRESETS, clip_remote_file

    if args.preset not in PRESETS or PRESETS[args.preset]["checkpoint"] is None:
        real = [k for k, v in PRESETS.items() if v["checkpoint"] is not None]
        raise usage(f"--preset must be one of {', '.join(real)} (tiny needs no download)")
    cache = Path(args.cache_dir) if args.cache_dir else None
    paths = [ensure_file(PRESETS[args.preset]["checkpoint"], cache_dir=cache),
             ensure_file(clip_remote_file(args.clip_model), cache_dir=cache)]
    for p in paths:
        print(p)
    return paths

