"""Safe, checked, all-or-nothing extraction of zip and tar archives.

Nothing in an archive is trusted: a member with an absolute path, a ``..`` component, a drive
letter, a link (symbolic or hard), a device or any other special file is refused before a byte is
written, so an archive cannot write outside its folder or plant a link that later writes lead
through. macOS resource-fork debris (``__MACOSX/``, ``._*``) is skipped. Members are extracted into
a temporary folder beside the destination, checked against the manifest (``Extraction``: a count of
files matching a pattern, required names), and only then renamed into place, with a
``.extracted.json`` note recording what was checked; a rerun finds the note and skips the archive.
Extracted files are data: nothing is ever executed, and permission bits from the archive are ignored.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from ..cli import UsageError
from .manifest import Extraction

NOTE = ".extracted.json"


class ArchiveError(UsageError):
    """An archive that is unsafe, unreadable or not what the manifest expects; the message names it."""


def _skip(member: str) -> bool:
    parts = PurePosixPath(member).parts
    return "__MACOSX" in parts or (bool(parts) and parts[-1].startswith("._"))


def safe_member_path(name: str, archive: Path) -> PurePosixPath:
    """The relative path a member may be written to, or an ``ArchiveError`` naming the member."""
    normalized = name.replace("\\", "/")
    path = PurePosixPath(normalized)
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":") or path.is_absolute():
        raise ArchiveError(f"{archive}: refusing member {name!r}: absolute path")
    if any(part == ".." for part in path.parts):
        raise ArchiveError(f"{archive}: refusing member {name!r}: it points outside the archive folder ('..')")
    return PurePosixPath(*[p for p in path.parts if p not in ("", ".")])


def _zip_members(archive: Path, handle: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    members = []
    for info in handle.infolist():
        if _skip(info.filename):
            continue
        relative = safe_member_path(info.filename, archive)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ArchiveError(f"{archive}: refusing member {info.filename!r}: a symbolic link")
        kind = stat.S_IFMT(mode)  # 0 when the archiver wrote permission bits only
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(f"{archive}: refusing member {info.filename!r}: not a regular file or folder")
        members.append((info, relative))
    return members


def _tar_members(archive: Path, handle: tarfile.TarFile) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    members = []
    for info in handle.getmembers():
        if _skip(info.name):
            continue
        relative = safe_member_path(info.name, archive)
        if info.issym() or info.islnk():
            raise ArchiveError(f"{archive}: refusing member {info.name!r}: a link (to {info.linkname!r})")
        if not (info.isreg() or info.isdir()):
            raise ArchiveError(f"{archive}: refusing member {info.name!r}: not a regular file or folder")
        members.append((info, relative))
    return members


def _write(stream, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)


def _check(files: list[PurePosixPath], expect: Extraction | None, archive: Path) -> dict:
    """Compare the extracted member list with the manifest's expectation; mismatch names the archive."""
    names = [p.as_posix() for p in files]
    summary = {"files": len(names)}
    if expect is None:
        return summary
    if expect.pattern is not None:
        matching = sum(fnmatch.fnmatchcase(n, expect.pattern) for n in names)
        summary["matching"] = {expect.pattern: matching}
        if expect.count is not None and matching != expect.count:
            raise ArchiveError(f"{archive}: {matching} files match {expect.pattern!r} after extraction, expected "
                               f"{expect.count}: the archive is incomplete or another version; delete it and rerun")
    present = set(names)
    missing = [n for n in expect.names if n not in present]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ArchiveError(f"{archive}: missing after extraction: {shown}; the archive is incomplete or another "
                           "version; delete it and rerun")
    return summary


def is_extracted(destination: Path, archive_sha256: str | None = None) -> bool:
    """Whether ``destination`` holds a finished, checked extraction (of the archive with that sha256)."""
    note = destination / NOTE
    if not note.is_file():
        return False
    try:
        recorded = json.loads(note.read_text())
    except (OSError, ValueError):
        return False
    return archive_sha256 is None or recorded.get("archive_sha256") == archive_sha256


def extract(archive: str | Path, destination: str | Path, expect: Extraction | None = None,
            archive_sha256: str | None = None, progress: bool = True) -> dict:
    """Extract ``archive`` (zip, tar, tar.gz, ...) into ``destination`` safely and all at once.

    Returns the summary written to the ``.extracted.json`` note (file count, pattern matches).
    A ``destination`` already holding a finished extraction of the same archive is left as is.
    """
    archive, destination = Path(archive), Path(destination)
    if is_extracted(destination, archive_sha256):
        return json.loads((destination / NOTE).read_text())
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.extracting-", dir=destination.parent))
    try:
        try:
            files = _extract_into(archive, staging, progress)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as error:
            raise ArchiveError(f"{archive}: cannot be read ({type(error).__name__}: {error}); delete it and rerun") \
                from None
        summary = _check(files, expect, archive)
        summary.update(archive=archive.name, archive_sha256=archive_sha256)
        (staging / NOTE).write_text(json.dumps(summary, indent=1) + "\n")
        if destination.exists():
            shutil.rmtree(destination)  # an unfinished or outdated extraction (it has no matching note)
        os.replace(staging, destination)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return summary


def _extract_into(archive: Path, staging: Path, progress: bool) -> list[PurePosixPath]:
    files: list[PurePosixPath] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as handle:
            members = _zip_members(archive, handle)
            for info, relative in tqdm(members, desc=f"extracting {archive.name}", unit="file", disable=not progress,
                                       leave=False):
                if info.is_dir():
                    (staging / relative).mkdir(parents=True, exist_ok=True)
                    continue
                with handle.open(info) as stream:
                    _write(stream, staging / relative)
                files.append(relative)
        return files
    try:
        handle = tarfile.open(archive)
    except tarfile.TarError as error:
        raise ArchiveError(f"{archive}: not a zip or tar archive ({error}); delete it and rerun") from None
    with handle:
        members = _tar_members(archive, handle)
        for info, relative in tqdm(members, desc=f"extracting {archive.name}", unit="file", disable=not progress,
                                   leave=False):
            if info.isdir():
                (staging / relative).mkdir(parents=True, exist_ok=True)
                continue
            stream = handle.extractfile(info)
            if stream is None:
                raise ArchiveError(f"{archive}: member {info.name!r} cannot be read")
            with stream:
                _write(stream, staging / relative)
            files.append(relative)
    return files
