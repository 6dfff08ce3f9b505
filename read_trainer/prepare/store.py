"""The data folder: downloads, extracted sources, and links from the layouts the recipes read.

    <data_dir>/downloads/<source>/<file>     as fetched and verified (fetch.Fetcher)
    <data_dir>/sources/<source>/<archive>/   each archive extracted and checked (archives.extract)

The training and benchmark folders built from them hold relative symbolic links into
``sources/``, so the images exist once on disk and the whole data folder can be moved.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..cli import UsageError
from .archives import extract, is_extracted
from .fetch import Fetcher, plan_space
from .manifest import Manifest, RemoteFile, Source


class DataStore:
    def __init__(self, data_dir: str | Path, manifest: Manifest, mirror: str | None = None, progress: bool = True,
                 keep_archives: bool = True):
        self.root = Path(data_dir)
        self.manifest = manifest
        self.fetcher = Fetcher(self.root / "downloads", mirror=mirror, progress=progress)
        self.progress = progress
        self.keep_archives = keep_archives

    def source(self, source_id: str) -> Source:
        return self.manifest[source_id]

    def extracted_dir(self, source_id: str, name: str) -> Path:
        return self.root / "sources" / source_id / name.split(".")[0]

    def file(self, source_id: str, name: str) -> Path:
        """A verified copy of one manifest file."""
        source = self.source(source_id)
        return self.fetcher.fetch(source, source.file(name))

    def extracted(self, source_id: str, name: str) -> Path:
        """The folder an archive was extracted into (fetched, verified and extracted when needed)."""
        source = self.source(source_id)
        file = source.file(name)
        destination = self.extracted_dir(source_id, name)
        if is_extracted(destination):
            return destination
        archive = self.fetcher.fetch(source, file)
        extract(archive, destination, file.extract, progress=self.progress)
        if not self.keep_archives:
            archive.unlink()
            archive.with_name(archive.name + ".verified").unlink(missing_ok=True)
        return destination

    def pending(self, wanted: Iterable[tuple[str, str]]) -> list[tuple[Source, RemoteFile]]:
        """The (source, file) pairs not yet on disk in their final form (verified file or extraction)."""
        out = []
        for source_id, name in wanted:
            source = self.source(source_id)
            file = source.file(name)
            if file.extract is not None and is_extracted(self.extracted_dir(source_id, name)):
                continue
            if file.extract is None and self.fetcher.is_verified(source, file):
                continue
            out.append((source, file))
        return out

    def check_space(self, wanted: Iterable[tuple[str, str]]) -> dict:
        """Free-space and reachability check for everything still to download (``fetch.plan_space``)."""
        return plan_space(self.fetcher, self.pending(wanted), self.root)


def basename_index(folders: Iterable[Path], suffixes: tuple[str, ...] = (".jpg", ".jpeg", ".png")) -> dict[str, Path]:
    """File name -> path for every image under ``folders`` (first one wins; names are unique per source)."""
    index: dict[str, Path] = {}
    for folder in folders:
        for dirpath, _, filenames in os.walk(folder):
            for name in filenames:
                if name.lower().endswith(suffixes) and not name.startswith("._"):
                    index.setdefault(name, Path(dirpath) / name)
    return index


def link(target: Path, link_path: Path) -> None:
    """A relative symbolic link ``link_path`` -> ``target`` (replacing an older link)."""
    link_path.parent.mkdir(parents=True, exist_ok=True)
    if link_path.is_symlink() or link_path.exists():
        if link_path.is_symlink() and os.path.realpath(link_path) == os.path.realpath(target):
            return
        link_path.unlink()
    os.symlink(os.path.relpath(target, link_path.parent), link_path)


def link_all(wanted: dict[str, str], index: dict[str, Path], folder: Path, what: str, hint: str) -> int:
    """Link every ``relative path -> file name`` of ``wanted`` under ``folder`` from ``index``.

    A file missing from every source is an error naming how many and the first few.
    """
    missing = [name for name in wanted.values() if name not in index]
    if missing:
        shown = ", ".join(sorted(set(missing))[:5])
        raise UsageError(f"{what}: {len(set(missing))} image(s) the annotations name are in none of the downloaded "
                         f"sources (e.g. {shown}); {hint}")
    for relative, name in wanted.items():
        link(index[name], folder / relative)
    return len(wanted)
