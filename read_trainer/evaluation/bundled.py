"""The benchmark annotation files shipped inside the package, and their integrity check.

SugarCrepe (MIT), SugarCrepe++ (data CC BY 4.0) and VALSE (MIT) annotations are small
(~9 MB) and travel with the package under ``read_trainer/evaluation/annotations/``, one
folder per benchmark in the ``data_root`` layout of ``suite.py``, each with the
``LICENSE.md`` that names its source commit and licence and a ``SHA256SUMS`` file.
Images are not shipped (COCO, Visual Genome, ... have their own terms); text-only
benchmarks such as ``sugarcrepe_pp_tot`` need none.

    from read_trainer.evaluation.bundled import bundled_data_root
    load_suite(["sugarcrepe_pp_tot"], bundled_data_root())
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

# Benchmark folders shipped here; the benchmark names that read only these folders.
BUNDLED_FOLDERS = ("sugarcrepe", "sugarcrepe_pp", "valse")
BUNDLED_BENCHMARKS = ("sugarcrepe", "sugarcrepe_pp_itt", "sugarcrepe_pp_tot", "valse")


class ChecksumError(RuntimeError):
    """A shipped annotation file is missing or differs from its recorded SHA-256."""


def bundled_data_root() -> Path:
    """The folder holding the shipped benchmark folders (a real directory: the package is not zipped)."""
    root = resources.files("read_trainer.evaluation") / "annotations"
    path = Path(str(root))
    if not (path / "sugarcrepe_pp").is_dir():
        raise FileNotFoundError(f"the bundled benchmark annotations are missing from {path}; reinstall read-trainer")
    return path


def read_checksums(folder: Path) -> dict[str, str]:
    """``{file name: sha256 hex}`` from ``folder/SHA256SUMS`` (``sha256sum`` output format)."""
    sums = {}
    for line in (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*").removeprefix("./")] = digest
    return sums


def verify_bundled(root: Path | None = None) -> dict[str, int]:
    """Check every shipped file against its SHA256SUMS; return files checked per benchmark folder.

    Raises ``ChecksumError`` naming the first file that is missing or altered.
    """
    root = bundled_data_root() if root is None else Path(root)
    checked = {}
    for name in BUNDLED_FOLDERS:
        folder = root / name
        sums = read_checksums(folder)
        for file, expected in sorted(sums.items()):
            path = folder / file
            if not path.is_file():
                raise ChecksumError(f"{path}: listed in SHA256SUMS but missing")
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
            if actual != expected:
                raise ChecksumError(f"{path}: sha256 {actual} differs from the recorded {expected}")
        checked[name] = len(sums)
    return checked


def default_data_root(data_root: str | Path | None, names=()) -> Path:
    """``data_root`` if given, else the bundled folder (which holds only ``BUNDLED_BENCHMARKS``)."""
    if data_root is not None:
        return Path(data_root)
    from .suite import expand_names

    missing = [n for n in expand_names(list(names)) if n not in BUNDLED_BENCHMARKS]
    if missing:
        raise ValueError(f"benchmark(s) {missing} are not shipped with the package; give their folder with "
                         f"--data_root (shipped: {', '.join(BUNDLED_BENCHMARKS)})")
    return bundled_data_root()
