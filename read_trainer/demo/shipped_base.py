"""The demo's base CLIP and T5, shipped in the package and checked by SHA-256 before use.

Pretraining both on two CPU cores takes minutes, more than the rest of the demo together,
and gives the same files every time (``base_models.BUILD_THREADS`` fixes the thread
count), so the built checkpoints travel with the package (~7 MB)::

    base_checkpoints/
        SHA256SUMS              sha256sum format, one line per file below
        clip/ ...               a CLIPModel + CLIPProcessor folder (build_params.json: how it was built)
        t5/ ...                 a T5 v1.1-style folder with its tokenizer

They are used only where they are what ``base_models.base_models`` would build for the
demo's settings (``shipped_applies``: same world, same pretraining recipes, same thread
count), and only after every file matches ``SHA256SUMS`` (``verify_shipped``): a damaged
or edited copy stops the demo with an error naming the file, rather than quietly giving
other numbers. ``recipes/build_base_checkpoints.py`` rebuilds them from scratch and says
whether the rebuild matches the shipped sums.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..evaluation.bundled import ChecksumError, read_checksums
from .base_models import BaseModels, build_params

SHIPPED_DIR = Path(__file__).with_name("base_checkpoints")
KINDS = ("clip", "t5")
PARAMS_FILE = "build_params.json"  # what cache.cached_build writes into every built folder


def _root(root: str | Path | None) -> Path:
    return Path(SHIPPED_DIR if root is None else root)  # looked up per call: a test may point it at a copy


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def folder_checksums(folders: dict[str, Path]) -> dict[str, str]:
    """``{"clip/config.json": sha256, ...}`` for every file of ``{"clip": folder, "t5": folder}``."""
    return {f"{kind}/{path.relative_to(folder).as_posix()}": file_sha256(path)
            for kind, folder in folders.items() for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def tree_checksums(root: str | Path) -> dict[str, str]:
    """``folder_checksums`` of ``root/clip`` and ``root/t5`` (the shipped layout)."""
    return folder_checksums({kind: Path(root) / kind for kind in KINDS})


def compare_to_shipped(base: BaseModels, root: str | Path | None = None) -> dict[str, str]:
    """``compare_checksums`` of built base models (e.g. a cache's) against the shipped ``SHA256SUMS``."""
    return compare_checksums(folder_checksums({"clip": Path(base.clip), "t5": Path(base.t5)}),
                             read_checksums(_root(root)))


def describe_comparison(status: dict[str, str]) -> str:
    """"all N files match ..." or the files that do not, one per line."""
    bad = {name: s for name, s in status.items() if s != "match"}
    if not bad:
        return f"all {len(status)} files match the shipped SHA256SUMS (bit for bit)"
    return (f"{len(bad)} of {len(status)} files do not match the shipped SHA256SUMS:\n"
            + "\n".join(f"  {name}: {s}" for name, s in bad.items()))


def write_checksums(root: str | Path) -> Path:
    """Write ``root/SHA256SUMS`` for ``root``'s model folders (readable by ``sha256sum -c``)."""
    sums = Path(root) / "SHA256SUMS"
    sums.write_text("".join(f"{digest}  ./{name}\n" for name, digest in tree_checksums(root).items()),
                    encoding="utf-8")
    return sums


def compare_checksums(built: dict[str, str], recorded: dict[str, str]) -> dict[str, str]:
    """Per file: ``"match"``, ``"differs"``, ``"missing"`` (recorded, not built) or ``"extra"``."""
    status = {}
    for name in sorted(set(built) | set(recorded)):
        if name not in built:
            status[name] = "missing"
        elif name not in recorded:
            status[name] = "extra"
        else:
            status[name] = "match" if built[name] == recorded[name] else "differs"
    return status


def verify_shipped(root: str | Path | None = None) -> int:
    """Check every shipped file against ``SHA256SUMS``; return how many were checked.

    Raises ``ChecksumError`` naming the first file that is missing, altered, or not listed
    (an unlisted file in a model folder, e.g. a stray ``tokenizer.json``, changes what loads).
    """
    root = _root(root)
    if not (root / "SHA256SUMS").is_file():
        raise ChecksumError(f"{root / 'SHA256SUMS'}: missing; the shipped base checkpoints cannot be checked "
                            f"(reinstall read-trainer, or run the demo with --rebuild_base)")
    recorded = read_checksums(root)
    for name, status in compare_checksums(tree_checksums(root), recorded).items():
        path = root / name
        if status == "missing":
            raise ChecksumError(f"{path}: listed in SHA256SUMS but missing")
        if status == "extra":
            raise ChecksumError(f"{path}: not listed in SHA256SUMS (remove it, or rebuild with --rebuild_base)")
        if status == "differs":
            raise ChecksumError(f"{path}: sha256 {file_sha256(path)} differs from the recorded {recorded[name]} "
                                f"(the shipped base checkpoint was altered; reinstall, or run with --rebuild_base)")
    return len(recorded)


def _normalised(params: dict) -> dict:
    # build_params.json is written with json.dumps(default=str): compare like with like.
    return json.loads(json.dumps(params, sort_keys=True, default=str))


def shipped_applies(world_params: dict, clip_recipe, t5_recipe, root: str | Path | None = None) -> bool:
    """Whether the shipped checkpoints are what ``base_models`` would build for these settings."""
    root = _root(root)
    for kind, recipe in zip(KINDS, (clip_recipe, t5_recipe)):
        recorded = root / kind / PARAMS_FILE
        if not recorded.is_file():
            return False
        if json.loads(recorded.read_text(encoding="utf-8")) != _normalised(build_params(kind, world_params, recipe)):
            return False
    return True


def shipped_base(root: str | Path | None = None) -> BaseModels:
    """The shipped base models, after ``verify_shipped``."""
    root = _root(root)
    verify_shipped(root)
    return BaseModels(root / "clip", root / "t5")


__all__ = ["SHIPPED_DIR", "KINDS", "ChecksumError", "folder_checksums", "tree_checksums", "write_checksums",
           "compare_checksums", "compare_to_shipped", "describe_comparison", "verify_shipped", "shipped_applies",
           "shipped_base", "file_sha256"]
