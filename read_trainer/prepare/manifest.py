"""The manifest: every file the reproduction downloads, where it comes from and how it is checked.

``manifest.json`` (beside this module) holds one entry per *source* (a dataset release), each with
its files. A file is either a URL or a file in a Hugging Face Hub repository, with what is known
about it: size in bytes, a checksum where a source publishes one (sha256, md5, or the git blob
SHA-1 of a file kept in a git repository), who publishes that checksum, and for an archive what
extraction must produce. Every source names its licence and the official page it comes from, and
``unverified`` lists what could not be confirmed from a primary source when the entry was written.

A file without a published checksum is checked against the size the server announces and, from
its first download on, against the sha256 recorded then (``fetch.ChecksumLock``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..cli import UsageError

MANIFEST_PATH = Path(__file__).with_name("manifest.json")
DIGESTS = ("sha256", "md5", "git_sha1")
_HEX = {"sha256": 64, "md5": 32, "git_sha1": 40}


@dataclass(frozen=True)
class HubFile:
    """A file in a Hub repository, fetched with ``huggingface_hub.hf_hub_download``."""

    repo_id: str
    path: str
    repo_type: str = "dataset"
    revision: str = "main"

    @property
    def page(self) -> str:
        """The repository's web page on the Hub in use (``HF_ENDPOINT`` names a mirror), for messages."""
        from huggingface_hub import constants

        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"{constants.ENDPOINT}/{prefix}{self.repo_id}"


@dataclass(frozen=True)
class Extraction:
    """What extracting an archive must give: ``count`` files matching ``pattern`` and each of ``names``.

    Patterns are ``fnmatch`` patterns on the member path inside the archive (``train2014/*.jpg``).
    """

    pattern: str | None = None
    count: int | None = None
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str | None = None
    hub: HubFile | None = None
    bytes: int | None = None
    sha256: str | None = None
    md5: str | None = None
    git_sha1: str | None = None
    checksum_source: str | None = None
    mirror_path: str | None = None
    bundled: str | None = None  # a byte-identical copy shipped in read_trainer/evaluation/annotations/
    rows: int | None = None  # rows a table file (parquet, JSONL) must hold
    extract: Extraction | None = None

    @property
    def digests(self) -> dict[str, str]:
        """The published checksums of this file (algorithm -> lower-case hex)."""
        return {k: getattr(self, k) for k in DIGESTS if getattr(self, k)}

    @property
    def location(self) -> str:
        """Where the file comes from, for messages."""
        return self.url if self.url else f"{self.hub.page} ({self.hub.path} at {self.hub.revision})"

    def path_under_mirror(self) -> str:
        """The file's path below a ``--mirror``: ``host/path`` of its URL unless the manifest gives one."""
        if self.mirror_path:
            return self.mirror_path
        parts = urlsplit(self.url)
        return f"{parts.hostname}{parts.path}"


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    licence: str
    official: str  # the page or repository the files are cited from
    files: tuple[RemoteFile, ...] = ()
    gated: str | None = None  # how to get access, when the source needs an account or terms
    user_supplied: str | None = None  # no download: the user gives a folder (what it must hold)
    unverified: tuple[str, ...] = ()
    notes: str = ""

    def file(self, name: str) -> RemoteFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"source {self.id!r} has no file {name!r}; it has {[f.name for f in self.files]}")


@dataclass
class Manifest:
    sources: dict[str, Source]
    path: Path = field(default=MANIFEST_PATH)

    def __getitem__(self, source_id: str) -> Source:
        if source_id not in self.sources:
            raise UsageError(f"{self.path}: no source {source_id!r} (it has {', '.join(sorted(self.sources))})")
        return self.sources[source_id]

    def __iter__(self):
        return iter(self.sources.values())


def _extraction(raw: dict | None, where: str) -> Extraction | None:
    if raw is None:
        return None
    unknown = set(raw) - {"pattern", "count", "names"}
    if unknown:
        raise ValueError(f"{where}: unknown extract key(s) {sorted(unknown)}")
    return Extraction(raw.get("pattern"), raw.get("count"), tuple(raw.get("names", ())))


def _file(raw: dict, where: str) -> RemoteFile:
    raw = dict(raw)
    hub = raw.pop("hub", None)
    extract = _extraction(raw.pop("extract", None), where)
    known = {f for f in RemoteFile.__dataclass_fields__} - {"hub", "extract"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
    if "name" not in raw or not re.fullmatch(r"[A-Za-z0-9._-]+", raw["name"]):
        raise ValueError(f"{where}: a file needs a plain 'name' (letters, digits, '.', '_', '-'), got {raw.get('name')!r}")
    if (raw.get("url") is None) == (hub is None):
        raise ValueError(f"{where}: give exactly one of 'url' and 'hub'")
    for algorithm in DIGESTS:
        value = raw.get(algorithm)
        if value is not None and not re.fullmatch(rf"[0-9a-f]{{{_HEX[algorithm]}}}", value):
            raise ValueError(f"{where}: {algorithm} must be {_HEX[algorithm]} lower-case hex digits, got {value!r}")
    return RemoteFile(**raw, hub=HubFile(**hub) if hub else None, extract=extract)


def parse_manifest(data: dict[str, Any], path: Path = MANIFEST_PATH) -> Manifest:
    """Build a ``Manifest`` from its JSON form; a malformed entry is a ``ValueError`` naming it."""
    sources = {}
    for source_id, raw in data.get("sources", {}).items():
        raw = dict(raw)
        where = f"{path}: source {source_id!r}"
        files = tuple(_file(f, f"{where}, file {i}") for i, f in enumerate(raw.pop("files", [])))
        names = [f.name for f in files]
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: file names repeat: {names}")
        missing = {"title", "licence", "official"} - set(raw)
        if missing:
            raise ValueError(f"{where}: missing {sorted(missing)}")
        raw["unverified"] = tuple(raw.get("unverified", ()))
        try:
            sources[source_id] = Source(id=source_id, files=files, **raw)
        except TypeError as error:
            raise ValueError(f"{where}: {error}") from None
    return Manifest(sources, path)


def load_manifest(path: str | Path | None = None) -> Manifest:
    """The package's manifest, or another file in the same format (the tests' own)."""
    path = Path(path) if path is not None else MANIFEST_PATH
    if not path.is_file():
        raise UsageError(f"manifest {path} does not exist")
    return parse_manifest(json.loads(path.read_text(encoding="utf-8")), path)
