"""Downloads that resume, verify and never leave a half-written file where a finished one belongs.

Each manifest file lands at ``<downloads>/<source id>/<file name>``:

- it is written to ``<name>.part`` first; an interrupted download resumes from the bytes already
  there with an HTTP ``Range`` request (``If-Range`` on the server's ETag or Last-Modified, so a
  file that changed upstream restarts instead of being spliced), also within one run when the
  connection drops;
- it is checked before it is moved into place (size, then every published checksum: sha256, md5,
  git blob SHA-1; a Hub file also against the sha256 the Hub reports for it); a file with no
  published checksum is checked against the sha256 recorded at its first download
  (``checksums.lock.json``);
- a verified file gets a ``<name>.verified`` note (size, mtime, checksums), so a rerun skips it
  without hashing it again; a file a user put there by hand is verified the same way and used.

Every failure is a ``DownloadError``: one line naming the file and what to do. ``--mirror`` replaces
the hosts: a URL ``https://host/path`` is fetched from ``<mirror>/host/path`` and a Hub file from the
mirror used as a Hub endpoint (``<mirror>/datasets/<repo>/resolve/<revision>/<path>``); a local
folder works the same way with files instead of URLs. Nothing fetched is ever executed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tqdm.auto import tqdm

from ..cli import UsageError
from .manifest import HubFile, RemoteFile, Source

CHUNK = 1 << 20
USER_AGENT = "read-trainer-prepare/1"


class DownloadError(UsageError):
    """A file could not be fetched or verified; the message names it and says what to do."""


def digests_of(path: str | Path, algorithms: Iterable[str] = ("sha256",)) -> dict[str, str]:
    """The requested checksums of a file in one pass (``git_sha1`` = ``git hash-object``'s blob id)."""
    path = Path(path)
    hashers = {}
    for algorithm in set(algorithms):
        if algorithm == "git_sha1":
            hasher = hashlib.sha1()
            hasher.update(b"blob %d\0" % path.stat().st_size)
        else:
            hasher = hashlib.new(algorithm)
        hashers[algorithm] = hasher
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            for hasher in hashers.values():
                hasher.update(block)
    return {k: h.hexdigest() for k, h in hashers.items()}


def _human(n: int | None) -> str:
    if n is None:
        return "unknown size"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


class ChecksumLock:
    """sha256 and size of files no source publishes a checksum for, recorded at their first download."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, dict] = json.loads(path.read_text()) if path.is_file() else {}

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, key: str, sha256: str, size: int) -> None:
        self.entries[key] = {"sha256": sha256, "bytes": size}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.path)


@dataclass
class RemoteInfo:
    """What a server says about a file before it is downloaded."""

    size: int | None
    hub_sha256: str | None = None  # the Hub's ETag of an LFS file is its sha256
    hub_commit: str | None = None


class Fetcher:
    """Fetch and verify manifest files into ``downloads`` (see the module docstring)."""

    def __init__(self, downloads: str | Path, mirror: str | None = None, progress: bool = True,
                 timeout: float = 60.0, retries: int = 3):
        self.root = Path(downloads)
        self.root.mkdir(parents=True, exist_ok=True)
        self.mirror = mirror.rstrip("/") if mirror else None
        if self.mirror and not self.mirror.startswith(("http://", "https://")) and not Path(self.mirror).is_dir():
            raise UsageError(f"--mirror {mirror!r} is neither an http(s):// URL nor an existing folder")
        self.progress = progress
        self.timeout = timeout
        self.retries = retries
        self.lock = ChecksumLock(self.root / "checksums.lock.json")

    # -- where things are --------------------------------------------------------------
    @property
    def local_mirror(self) -> Path | None:
        return Path(self.mirror) if self.mirror and not self.mirror.startswith(("http://", "https://")) else None

    def path_for(self, source: Source, file: RemoteFile) -> Path:
        return self.root / source.id / file.name

    def url_for(self, file: RemoteFile) -> str:
        return f"{self.mirror}/{file.path_under_mirror()}" if self.mirror else file.url

    def _hub_mirror_path(self, hub: HubFile) -> Path:
        return self.local_mirror / f"{hub.repo_type}s" / hub.repo_id / "resolve" / hub.revision / hub.path

    # -- the public calls --------------------------------------------------------------
    def is_verified(self, source: Source, file: RemoteFile) -> bool:
        """Whether the file is in place with a note from a verification of exactly these bytes."""
        path = self.path_for(source, file)
        note = path.with_name(path.name + ".verified")
        if not (path.is_file() and note.is_file()):
            return False
        try:
            recorded = json.loads(note.read_text())
        except (OSError, ValueError):
            return False
        stat = path.stat()
        same_bytes = recorded.get("bytes") == stat.st_size and recorded.get("mtime_ns") == stat.st_mtime_ns
        return same_bytes and all(recorded.get("digests", {}).get(k) == v for k, v in file.digests.items())

    def remote_info(self, source: Source, file: RemoteFile) -> RemoteInfo:
        """Size (and Hub sha256) of a file not yet downloaded; an unreachable or gated source raises now."""
        if file.bundled and self._bundled_copy(file) is not None:
            return RemoteInfo(0)
        if self.local_mirror is not None:
            local = self._hub_mirror_path(file.hub) if file.hub else self.local_mirror / file.path_under_mirror()
            if not local.is_file():
                raise DownloadError(f"{self._name(source, file)}: not in the mirror folder (looked for {local})")
            return RemoteInfo(local.stat().st_size)
        if file.hub:
            return self._hub_info(source, file)
        return RemoteInfo(self._head_size(source, file))

    def fetch(self, source: Source, file: RemoteFile) -> Path:
        """The verified file on disk, downloaded (or resumed) when it is not there yet."""
        path = self.path_for(source, file)
        if self.is_verified(source, file):
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            # There without a note (placed by hand, or a note from other bytes): verify these bytes.
            self._verify_and_place(source, file, path, path, RemoteInfo(None), fetched=False)
            return path
        part = path.with_name(path.name + ".part")
        bundled = self._bundled_copy(file) if file.bundled else None
        if bundled is not None:
            shutil.copyfile(bundled, part)
            info = RemoteInfo(part.stat().st_size)
        elif self.local_mirror is not None:
            info = self.remote_info(source, file)
            local = self._hub_mirror_path(file.hub) if file.hub else self.local_mirror / file.path_under_mirror()
            self._copy(local, part, self._name(source, file))
        elif file.hub:
            info = self._hub_info(source, file)
            self._hub_download(source, file, part)
        else:
            info = RemoteInfo(file.bytes)
            self._http_download(source, file, self.url_for(file), part)
        self._verify_and_place(source, file, part, path, info, fetched=True)
        return path

    # -- verification ------------------------------------------------------------------
    def _name(self, source: Source, file: RemoteFile) -> str:
        return f"{source.id}/{file.name}"

    def _verify_and_place(self, source: Source, file: RemoteFile, candidate: Path, path: Path, info: RemoteInfo,
                          fetched: bool) -> None:
        name = self._name(source, file)
        size = candidate.stat().st_size
        algorithms = set(file.digests) | {"sha256"}
        problem = None
        if file.bytes is not None and size != file.bytes:
            problem = f"size {size} bytes, expected {file.bytes} (manifest)"
        else:
            got = digests_of(candidate, algorithms)
            for algorithm, expected in file.digests.items():
                if got[algorithm] != expected:
                    problem = f"{algorithm} {got[algorithm]}, expected {expected} ({file.checksum_source or 'manifest'})"
                    break
            if problem is None and info.hub_sha256 and got["sha256"] != info.hub_sha256:
                problem = f"sha256 {got['sha256']}, expected {info.hub_sha256} (the Hub's checksum of this file)"
            locked = self.lock.get(name)
            if problem is None and not file.digests and locked is not None and (
                    locked["sha256"] != got["sha256"] or locked["bytes"] != size):
                problem = (f"sha256 {got['sha256']}, expected {locked['sha256']} (recorded at its first download in "
                           f"{self.lock.path}; delete that entry to accept a changed upstream file)")
        if problem is not None:
            bad = path.with_name(path.name + ".bad")
            os.replace(candidate, bad)
            again = ("Rerun to download it again; if it fails the same way, the file changed upstream: compare with "
                     f"{source.official}") if fetched else f"Delete {bad} or put the right file at {path}"
            raise DownloadError(f"{name} is corrupt or not the expected file: {problem}; moved to {bad}. {again}")
        if not file.digests and self.lock.get(name) is None:
            self.lock.put(name, got["sha256"], size)
        if candidate != path:
            os.replace(candidate, path)  # atomic: a finished, verified file or nothing
        stat = path.stat()
        note = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "digests": got,
                "checked": sorted(file.digests) or ["recorded sha256"], "hub_commit": info.hub_commit}
        path.with_name(path.name + ".verified").write_text(json.dumps(note, indent=1) + "\n")

    def _bundled_copy(self, file: RemoteFile) -> Path | None:
        from ..evaluation.bundled import bundled_data_root

        path = Path(bundled_data_root()) / file.bundled
        return path if path.is_file() else None

    # -- HTTP --------------------------------------------------------------------------
    def _request(self, url: str, headers: dict | None = None, method: str = "GET"):
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})}, method=method)
        return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 - http(s) URLs from the manifest

    def _http_error(self, source: Source, file: RemoteFile, url: str, error: Exception) -> DownloadError:
        name = self._name(source, file)
        if isinstance(error, urllib.error.HTTPError):
            if error.code in (401, 403):
                how = source.gated or ("the server refused access; download it in a browser from "
                                       f"{file.url} and put it at {self.path_for(source, file)}")
                return DownloadError(f"{name}: access denied by {url} (HTTP {error.code}): {how}, then rerun")
            if error.code == 404:
                return DownloadError(f"{name}: not found at {url} (HTTP 404): the source moved; see {source.official} "
                                     f"for its current location and put the file at {self.path_for(source, file)}")
            return DownloadError(f"{name}: {url} answered HTTP {error.code}; rerun later, or pass --mirror")
        reason = getattr(error, "reason", error)
        return DownloadError(f"{name}: {url} could not be reached ({type(error).__name__}: {reason}); check the "
                             "network or proxy, or pass --mirror, then rerun (finished files are kept)")

    def _head_size(self, source: Source, file: RemoteFile) -> int | None:
        url = self.url_for(file)
        try:
            with self._request(url, method="HEAD") as response:
                length = response.headers.get("Content-Length")
        except urllib.error.HTTPError as error:
            if error.code in (401, 403, 404):
                raise self._http_error(source, file, url, error) from None
            return None  # some hosts refuse HEAD; the size is then learnt when downloading
        except (urllib.error.URLError, OSError) as error:
            raise self._http_error(source, file, url, error) from None
        size = int(length) if length and length.isdigit() else None
        if size is not None and file.bytes is not None and size != file.bytes:
            raise DownloadError(f"{self._name(source, file)}: {url} offers {size} bytes but the manifest expects "
                                f"{file.bytes}: the upstream file changed; compare with {source.official}")
        return size if size is not None else file.bytes

    def _http_download(self, source: Source, file: RemoteFile, url: str, part: Path) -> None:
        """Download ``url`` into ``part``, resuming from what ``part`` holds (see the module docstring)."""
        name = self._name(source, file)
        validator_file = part.with_name(part.name + ".json")
        for attempt in range(self.retries + 1):
            have = part.stat().st_size if part.is_file() else 0
            saved = json.loads(validator_file.read_text()) if have and validator_file.is_file() else {}
            headers = {"Accept-Encoding": "identity"}
            if have:
                headers["Range"] = f"bytes={have}-"
                if saved.get("validator"):
                    headers["If-Range"] = saved["validator"]
            try:
                response = self._request(url, headers)
            except urllib.error.HTTPError as error:
                if error.code == 416 and have:
                    return  # the part already holds every byte; verification decides
                raise self._http_error(source, file, url, error) from None
            except (urllib.error.URLError, OSError) as error:
                if attempt < self.retries and have:
                    continue
                raise self._http_error(source, file, url, error) from None
            with response:
                resumed = response.status == 206 and response.headers.get("Content-Range", "").startswith(
                    f"bytes {have}-")
                if have and not resumed:
                    have = 0  # the server sent the whole file (changed upstream, or no Range support)
                content_type = response.headers.get("Content-Type", "")
                if content_type.startswith("text/html") and not file.name.endswith((".html", ".htm")):
                    raise DownloadError(
                        f"{name}: {url} returned a web page instead of the file (a sign-in, quota or confirmation "
                        f"page); download it in a browser from {file.url} and put it at {self.path_for(source, file)}, "
                        "then rerun")
                length = response.headers.get("Content-Length")
                total = have + int(length) if length and length.isdigit() else None
                if total is not None and file.bytes is not None and total != file.bytes:
                    raise DownloadError(f"{name}: {url} offers {total} bytes but the manifest expects {file.bytes}: "
                                        f"the upstream file changed; compare with {source.official}")
                validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
                validator_file.write_text(json.dumps({"url": url, "validator": validator}))
                try:
                    self._stream(response, part, have, total, name)
                except (OSError, http.client.HTTPException, socket.timeout) as error:
                    if attempt < self.retries:
                        continue  # resume from what arrived
                    got = part.stat().st_size if part.is_file() else 0
                    raise DownloadError(f"{name}: the download from {url} broke off after {got} bytes "
                                        f"({type(error).__name__}); rerun to resume it") from None
            if total is None or part.stat().st_size >= total:
                validator_file.unlink(missing_ok=True)
                return
        got = part.stat().st_size if part.is_file() else 0
        raise DownloadError(f"{name}: the download from {url} stopped at {got} bytes after {self.retries + 1} tries; "
                            "rerun to resume it")

    def _stream(self, response, part: Path, have: int, total: int | None, name: str) -> None:
        mode = "ab" if have else "wb"
        with part.open(mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=name,
                                          disable=not self.progress, leave=False) as bar:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise http.client.IncompleteRead(b"", total - part.stat().st_size)

    def _copy(self, source_path: Path, part: Path, name: str) -> None:
        with source_path.open("rb") as src, part.open("wb") as out, tqdm(
                total=source_path.stat().st_size, unit="B", unit_scale=True, desc=name, disable=not self.progress,
                leave=False) as bar:
            for block in iter(lambda: src.read(CHUNK), b""):
                out.write(block)
                bar.update(len(block))

    # -- the Hub -----------------------------------------------------------------------
    def _hub_endpoint(self) -> str | None:
        return self.mirror if self.mirror and self.local_mirror is None else None

    def _hub_error(self, source: Source, file: RemoteFile, error: Exception) -> DownloadError:
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            OfflineModeIsEnabled,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        name, hub = self._name(source, file), file.hub
        if isinstance(error, GatedRepoError) or (
                isinstance(error, HfHubHTTPError) and getattr(error.response, "status_code", None) in (401, 403)):
            how = source.gated or f"accept its terms at {hub.page} while logged in"
            return DownloadError(f"{name}: {hub.repo_id} is gated: {how}, then run `hf auth login` and rerun")
        if isinstance(error, RemoteEntryNotFoundError):
            return DownloadError(f"{name}: {hub.repo_id} has no file {hub.path!r} at {hub.revision}; see {hub.page}")
        if isinstance(error, RevisionNotFoundError):
            return DownloadError(f"{name}: {hub.repo_id} has no revision {hub.revision!r}; see {hub.page}")
        if isinstance(error, RepositoryNotFoundError):
            return DownloadError(f"{name}: {hub.repo_id} was not found on the Hub (a private repository needs "
                                 "`hf auth login`)")
        if isinstance(error, OfflineModeIsEnabled):
            return DownloadError(f"{name}: HF_HUB_OFFLINE=1 forbids downloading {hub.repo_id}; unset it and rerun")
        return DownloadError(f"{name}: the Hub could not be reached for {hub.repo_id} ({type(error).__name__}); "
                             "check the network, or pass --mirror, then rerun (finished files are kept)")

    def _hub_info(self, source: Source, file: RemoteFile) -> RemoteInfo:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        hub = file.hub
        url = hf_hub_url(hub.repo_id, hub.path, repo_type=hub.repo_type, revision=hub.revision,
                         endpoint=self._hub_endpoint())
        try:
            meta = get_hf_file_metadata(url, timeout=self.timeout, endpoint=self._hub_endpoint())
        except Exception as error:  # noqa: BLE001 - every Hub failure becomes one line naming the file
            raise self._hub_error(source, file, error) from None
        etag = (meta.etag or "").lower()
        sha256 = etag if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag) else None
        if meta.size is not None and file.bytes is not None and meta.size != file.bytes:
            raise DownloadError(f"{self._name(source, file)}: the Hub offers {meta.size} bytes but the manifest expects "
                                f"{file.bytes}: the repository changed; see {hub.page}")
        return RemoteInfo(meta.size, sha256, meta.commit_hash)

    def _hub_download(self, source: Source, file: RemoteFile, part: Path) -> None:
        """``hf_hub_download`` into a staging folder (it resumes its own ``.incomplete`` files), then to ``part``."""
        from huggingface_hub import hf_hub_download

        hub = file.hub
        staging = part.parent / ".hub"
        try:
            got = hf_hub_download(hub.repo_id, hub.path, repo_type=hub.repo_type, revision=hub.revision,
                                  local_dir=staging, endpoint=self._hub_endpoint())
        except Exception as error:  # noqa: BLE001 - every Hub failure becomes one line naming the file
            raise self._hub_error(source, file, error) from None
        os.replace(got, part)


def plan_space(fetcher: Fetcher, pending: list[tuple[Source, RemoteFile]], folder: Path,
               extraction_factor: float = 1.0, margin: float = 1.05) -> dict:
    """Check the free space before downloading anything: each pending file's remaining bytes, plus
    room to extract each archive, against the free space of ``folder``.

    Asking each server for its size also finds an unreachable or gated source now, before hours of
    downloading. Returns ``{"needed", "free", "unknown"}``; not enough space is a ``UsageError``.
    """
    needed, unknown = 0, []
    for source, file in pending:
        if fetcher.is_verified(source, file):  # downloaded; only its extraction (when pending) needs room
            size = fetcher.path_for(source, file).stat().st_size
            needed += int(size * extraction_factor) if file.extract is not None else 0
            continue
        size = fetcher.remote_info(source, file).size
        if size is None:
            unknown.append(f"{source.id}/{file.name}")
            continue
        part = fetcher.path_for(source, file).with_name(file.name + ".part")
        needed += size - (part.stat().st_size if part.is_file() else 0)
        if file.extract is not None:
            needed += int(size * extraction_factor)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if needed * margin > free:
        raise UsageError(f"not enough disk space in {folder}: the downloads and extraction need about "
                         f"{_human(int(needed * margin))}, {_human(free)} are free; free space or pass --data_dir on a "
                         "larger disk")
    return {"needed": needed, "free": free, "unknown": unknown}
