"""Build-once folders: written to a private temporary folder, renamed into place when complete.

The demo caches the world and its base models this way, so an interrupted build never
leaves a half-written folder behind and two processes building the same thing at once
both end up with one complete copy.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable


def cached_build(cache_dir: str | os.PathLike, key: str, build: Callable[[Path], None], params: dict,
                 params_file: str = "build_params.json") -> Path:
    """Return ``cache_dir/key``, calling ``build(tmp_folder)`` first if it is not there yet.

    ``params`` is written to ``params_file`` last, just before the rename, so that file's
    presence is what marks a folder as complete.
    """
    path = Path(cache_dir) / key
    if (path / params_file).exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{key}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    build(tmp)
    (tmp / params_file).write_text(json.dumps(params, indent=2, sort_keys=True, default=str))
    try:
        os.rename(tmp, path)
    except OSError:  # another process renamed its copy in first: keep theirs
        if not (path / params_file).exists():
            raise
        shutil.rmtree(tmp)
    return path
