"""Messages about paths that do not exist: where a relative path was looked for, and where it is."""

from __future__ import annotations

import sys
from pathlib import Path


def _checkout_folders() -> list[Path]:
    """Folders a relative path in the docs is meant from: the checkout's root and the running recipe's folder."""
    folders = [Path(__file__).resolve().parents[1]]
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.is_file():
        folders.append(script.resolve().parent)
    return list(dict.fromkeys(folders))


def relative_path_hint(path: str) -> str:
    """For a relative ``path`` that does not exist: where it was looked for, and where it does exist.

    Empty for an absolute path. A README command run from another folder than the checkout
    is the usual cause, so the checkout is searched too (and named when the path is there).
    """
    if not path or Path(path).expanduser().is_absolute() or "://" in path:
        return ""
    cwd = Path.cwd()
    hint = f"relative to the current directory {cwd}"
    for folder in _checkout_folders():
        if folder != cwd and (folder / path).exists():
            return f"{hint}; {folder / path} exists: pass that path or run from {folder}"
    return hint


def missing_path_message(what: str, path: str) -> str:
    """``<what> '<path>' does not exist`` plus, for a relative path, :func:`relative_path_hint`."""
    hint = relative_path_hint(path)
    return f"{what} {path!r} does not exist" + (f" ({hint})" if hint else "")
