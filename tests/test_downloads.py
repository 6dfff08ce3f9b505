"""Downloads against a local HTTP server: resume without re-fetching, verification, atomic placement,
one-line errors for corrupt, gated, unreachable or oversized sources, and safe extraction."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import load_recipe
from mirror_fixture import MirrorServer, build_mirror, zip_bytes

from read_trainer.cli import UsageError, run_recipe
from read_trainer.prepare.archives import ArchiveError, extract
from read_trainer.prepare.fetch import DownloadError, Fetcher, digests_of, plan_space
from read_trainer.prepare.manifest import MANIFEST_PATH, Extraction, load_manifest, parse_manifest

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, every byte position distinguishable


def _manifest(tmp_path: Path, files: list[dict], **source) -> tuple:
    entry = {"title": "t", "licence": "MIT", "official": "https://example.org/data", "files": files, **source}
    manifest = parse_manifest({"sources": {"demo": entry}}, tmp_path / "m.json")
    return manifest, manifest["demo"]


def _serve(root: Path, relative: str, data: bytes) -> None:
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_bytes(data)


@pytest.fixture()
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    with MirrorServer(root) as server:
        yield server


def test_cut_download_resumes_without_refetching_finished_bytes(tmp_path, served):
    _serve(served.root, "example.org/big.bin", PAYLOAD)
    _, source = _manifest(tmp_path, [{"name": "big.bin", "url": "https://example.org/big.bin", "bytes": len(PAYLOAD),
                                      "sha256": hashlib.sha256(PAYLOAD).hexdigest()}])
    cut = 300_001
    served.cut_once["example.org/big.bin"] = cut
    fetcher = Fetcher(tmp_path / "dl", mirror=served.url, progress=False)
    path = fetcher.fetch(source, source.file("big.bin"))
    assert path.read_bytes() == PAYLOAD
    # Two GETs: the cut one and one asking for the rest; every byte was sent exactly once.
    gets = [r for r in served.requests if r[0] == "GET"]
    assert [r[2] for r in gets] == [None, f"bytes={cut}-"]
    assert served.sent["example.org/big.bin"] == len(PAYLOAD)
    assert not path.with_name("big.bin.part").exists()


def test_a_part_left_by_a_killed_run_is_continued_on_the_next_run(tmp_path, served):
    _serve(served.root, "example.org/big.bin", PAYLOAD)
    _, source = _manifest(tmp_path, [{"name": "big.bin", "url": "https://example.org/big.bin",
                                      "sha256": hashlib.sha256(PAYLOAD).hexdigest()}])
    served.cut_once["example.org/big.bin"] = 123_456
    fetcher = Fetcher(tmp_path / "dl", mirror=served.url, progress=False, retries=0)
    with pytest.raises(DownloadError, match=r"demo/big.bin: the download .* broke off after 123456 bytes.*rerun"):
        fetcher.fetch(source, source.file("big.bin"))
    part = fetcher.path_for(source, source.file("big.bin")).with_name("big.bin.part")
    assert part.stat().st_size == 123_456
    # The next run (a new Fetcher, as after a restart) asks only for the missing bytes.
    Fetcher(tmp_path / "dl", mirror=served.url, progress=False).fetch(source, source.file("big.bin"))
    assert served.requests[-1][2] == "bytes=123456-"
    assert served.sent["example.org/big.bin"] == len(PAYLOAD)


def test_a_changed_upstream_file_restarts_instead_of_splicing(tmp_path, served):
    new = PAYLOAD[::-1]
    _serve(served.root, "example.org/big.bin", new)
    _, source = _manifest(tmp_path, [{"name": "big.bin", "url": "https://example.org/big.bin"}])
    fetcher = Fetcher(tmp_path / "dl", mirror=served.url, progress=False)
    part = fetcher.path_for(source, source.file("big.bin")).with_name("big.bin.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:1000])
    part.with_name("big.bin.part.json").write_text(json.dumps({"validator": '"an-older-etag"'}))
    assert fetcher.fetch(source, source.file("big.bin")).read_bytes() == new


def test_verified_files_are_skipped_on_rerun_and_recorded_checksums_hold(tmp_path, served):
    _serve(served.root, "example.org/a.json", b'{"a": 1}')
    _, source = _manifest(tmp_path, [{"name": "a.json", "url": "https://example.org/a.json"}])
    fetcher = Fetcher(tmp_path / "dl", mirror=served.url, progress=False)
    fetcher.fetch(source, source.file("a.json"))
    requests = len(served.requests)
    fetcher.fetch(source, source.file("a.json"))
    assert len(served.requests) == requests  # verified note found: nothing asked, nothing hashed
    lock = json.loads((tmp_path / "dl" / "checksums.lock.json").read_text())
    assert lock["demo/a.json"] == {"sha256": hashlib.sha256(b'{"a": 1}').hexdigest(), "bytes": 8}
    # No published checksum: a later download must match the sha256 recorded at the first one.
    fetcher.path_for(source, source.file("a.json")).unlink()
    _serve(served.root, "example.org/a.json", b'{"a": 2}')
    with pytest.raises(DownloadError, match=r"demo/a.json is corrupt .*recorded at its first download"):
        fetcher.fetch(source, source.file("a.json"))


@pytest.mark.parametrize("algorithm", ["sha256", "git_sha1", "md5"])
def test_a_corrupt_file_is_named_and_never_put_in_place(tmp_path, served, algorithm):
    _serve(served.root, "example.org/data.zip", PAYLOAD[:5000] + b"corrupted")
    expected = digests_of_bytes(PAYLOAD[:5009])[algorithm]
    _, source = _manifest(tmp_path, [{"name": "data.zip", "url": "https://example.org/data.zip",
                                      algorithm: expected, "checksum_source": "the project's release notes"}])
    fetcher = Fetcher(tmp_path / "dl", mirror=served.url, progress=False)
    with pytest.raises(DownloadError) as error:
        fetcher.fetch(source, source.file("data.zip"))
    message = str(error.value)
    assert message.startswith("demo/data.zip is corrupt or not the expected file: " + algorithm)
    assert "the project's release notes" in message and "Rerun to download it again" in message
    final = fetcher.path_for(source, source.file("data.zip"))
    assert not final.exists() and final.with_name("data.zip.bad").is_file()


def digests_of_bytes(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest(),
            "git_sha1": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}


def test_git_blob_sha1_matches_git_hash_object(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"hello\n")
    # `git hash-object` of "hello\n"
    assert digests_of(path, ["git_sha1"])["git_sha1"] == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_size_mismatch_unreachable_gated_and_web_pages_are_one_line_errors(tmp_path, served):
    _serve(served.root, "example.org/a.bin", b"12345")
    _serve(served.root, "example.org/page.bin", b"<html>quota exceeded</html>")
    _, source = _manifest(tmp_path, [{"name": "a.bin", "url": "https://example.org/a.bin", "bytes": 6},
                                     {"name": "page.bin", "url": "https://example.org/page.bin"},
                                     {"name": "locked.bin", "url": "https://example.org/locked.bin"}],
                          gated="accept the terms at https://example.org/terms")
    fetcher = Fetcher(tmp_path / "dl", mirror=served.url, progress=False)
    with pytest.raises(DownloadError, match=r"demo/a.bin: .* offers 5 bytes but the manifest expects 6"):
        plan_space(fetcher, [(source, source.file("a.bin"))], tmp_path)
    served.fail["example.org/locked.bin"] = (403, {})
    with pytest.raises(DownloadError, match=r"demo/locked.bin: access denied .*HTTP 403.*accept the terms at"):
        fetcher.fetch(source, source.file("locked.bin"))
    served.fail["example.org/page.bin"] = (200, {"Content-Type": "text/html; charset=utf-8"})
    with pytest.raises(DownloadError, match=r"demo/page.bin: .* returned a web page instead of the file"):
        fetcher.fetch(source, source.file("page.bin"))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(DownloadError, match=r"demo/a.bin: .* could not be reached .*pass --mirror"):
        Fetcher(tmp_path / "dl2", mirror=dead, progress=False).fetch(source, source.file("a.bin"))
    with pytest.raises(UsageError, match="neither an http"):
        Fetcher(tmp_path / "dl3", mirror=str(tmp_path / "no-such-folder"))


def test_not_enough_disk_space_stops_before_any_download(tmp_path, served, monkeypatch):
    _serve(served.root, "example.org/big.zip", PAYLOAD)
    _, source = _manifest(tmp_path, [{"name": "big.zip", "url": "https://example.org/big.zip", "extract": {}}])
    fetcher = Fetcher(tmp_path / "dl", mirror=served.url, progress=False)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=len(PAYLOAD)))  # room for the zip only
    with pytest.raises(UsageError, match=r"not enough disk space in .*need about 2.2 MB, 1.0 MB are free"):
        plan_space(fetcher, [(source, source.file("big.zip"))], tmp_path)
    assert [r[0] for r in served.requests] == ["HEAD"]


def test_gated_hub_file_through_huggingface_hub_names_what_to_do(tmp_path, served, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    hub_path = "datasets/org/gated/resolve/main/data.bin"
    served.fail[hub_path] = (401, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to this repo is restricted"})
    _, source = _manifest(tmp_path, [{"name": "data.bin", "hub": {"repo_id": "org/gated", "path": "data.bin"}}],
                          gated="accept the terms at https://huggingface.co/datasets/org/gated while logged in")
    with pytest.raises(DownloadError, match=r"demo/data.bin: org/gated is gated: accept the terms .* `hf auth login`"):
        Fetcher(tmp_path / "dl", mirror=served.url, progress=False).fetch(source, source.file("data.bin"))


def test_hub_file_is_fetched_by_huggingface_hub_and_checked_against_the_hubs_sha256(tmp_path, served, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    _serve(served.root, "datasets/org/data/resolve/main/sub/table.parquet", PAYLOAD[:4096])
    _, source = _manifest(tmp_path, [{"name": "table.parquet", "hub": {"repo_id": "org/data", "path": "sub/table.parquet"}}])
    fetcher = Fetcher(tmp_path / "dl", mirror=served.url, progress=False)
    path = fetcher.fetch(source, source.file("table.parquet"))
    assert path == tmp_path / "dl" / "demo" / "table.parquet" and path.read_bytes() == PAYLOAD[:4096]
    note = json.loads(path.with_name("table.parquet.verified").read_text())
    assert note["digests"]["sha256"] == hashlib.sha256(PAYLOAD[:4096]).hexdigest()
    assert note["hub_commit"] == "0123456789abcdef0123456789abcdef01234567"
    # The same file from a local folder laid out as a Hub endpoint.
    local = Fetcher(tmp_path / "dl2", mirror=str(served.root), progress=False)
    assert local.fetch(source, source.file("table.parquet")).read_bytes() == PAYLOAD[:4096]


def test_wrong_file_count_after_extraction_is_named(tmp_path):
    archive = tmp_path / "val2017.zip"
    archive.write_bytes(zip_bytes({f"val2017/{i:012d}.jpg": b"x" for i in range(3)}))
    with pytest.raises(ArchiveError, match=r"val2017.zip: 3 files match 'val2017/\*.jpg' after extraction, expected 5"):
        extract(archive, tmp_path / "out", Extraction("val2017/*.jpg", 5), progress=False)
    assert not (tmp_path / "out").exists()  # nothing half-extracted is left where a finished folder belongs
    summary = extract(archive, tmp_path / "out", Extraction("val2017/*.jpg", 3, ("val2017/000000000002.jpg",)),
                      progress=False)
    assert summary["matching"] == {"val2017/*.jpg": 3}
    with pytest.raises(ArchiveError, match=r"missing after extraction: val2017/000000000009.jpg"):
        extract(archive, tmp_path / "out2", Extraction(names=("val2017/000000000009.jpg",)), progress=False)


def _tar(members: list[tarfile.TarInfo], path: Path) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for info in members:
            t.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return path


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "zip_dotdot", "zip_symlink"])
def test_unsafe_archives_are_refused_before_anything_is_written(tmp_path, kind):
    if kind.startswith("zip"):
        archive = tmp_path / "a.zip"
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("ok.txt", "fine")
            if kind == "zip_dotdot":
                z.writestr("../evil.txt", "escaped")
            else:
                info = zipfile.ZipInfo("link")
                info.external_attr = 0o120777 << 16  # a symbolic link
                z.writestr(info, "/etc/passwd")
    else:
        good = tarfile.TarInfo("ok.txt")
        good.size = 1
        bad = tarfile.TarInfo({"dotdot": "../evil.txt", "absolute": "/tmp/evil.txt"}.get(kind, "link"))
        if kind in ("dotdot", "absolute"):
            bad.size = 1
        else:
            bad.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            bad.linkname = "/etc/passwd"
        archive = _tar([good, bad], tmp_path / "a.tar.gz")
    with pytest.raises(ArchiveError, match="refusing member"):
        extract(archive, tmp_path / "out" / "x", progress=False)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "x").exists()
    assert not any(p.name == "ok.txt" for p in tmp_path.rglob("*"))


def test_the_recipe_prints_one_error_line_naming_the_corrupt_file(tmp_path, capsys):
    prepare_data = load_recipe("prepare_data")
    mirror, manifest, _ = build_mirror(tmp_path, MANIFEST_PATH)
    zero = next(mirror.rglob("zero.json"))
    zero.write_bytes(zero.read_bytes().replace(b"in short", b"in brief"))  # what a damaged transfer looks like
    with MirrorServer(mirror) as server:
        status = run_recipe(prepare_data.main, ["paraphrases", "--source", "official", "--data_dir",
                                                str(tmp_path / "data"), "--mirror", server.url, "--manifest",
                                                str(manifest), "--no_progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert err[0].startswith("error: read-zero-paraphrases/zero.json is corrupt or not the expected file: git_sha1")


def test_packaged_manifest_is_complete_and_its_bundled_copies_match():
    from read_trainer.evaluation.bundled import bundled_data_root

    manifest = load_manifest()
    for source in manifest:
        assert source.licence and source.official.startswith("https://"), source.id
        assert source.files or source.user_supplied, source.id
        for file in source.files:
            assert file.url or file.hub, (source.id, file.name)
            if file.digests:
                assert file.checksum_source, (source.id, file.name)
            if file.bundled:
                shipped = Path(bundled_data_root()) / file.bundled
                assert digests_of(shipped, ["sha256", "git_sha1"]) == {"sha256": file.sha256,
                                                                       "git_sha1": file.git_sha1}
                assert shipped.stat().st_size == file.bytes
    # Every file the preparation code asks for is in the manifest.
    from read_trainer.prepare.benchmarks import files_for, folders_for
    from read_trainer.prepare.paraphrase_files import OFFICIAL
    from read_trainer.prepare.training import TRAINING_FILES

    wanted = [f for files in TRAINING_FILES.values() for f in files] + [OFFICIAL]
    wanted += [f for folder, names in folders_for(["all"]).items() for f in files_for(folder, names)]
    for source_id, name in wanted:
        manifest[source_id].file(name)


def test_a_malformed_manifest_entry_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"source 'demo', file 0: sha256 must be 64 lower-case hex"):
        _manifest(tmp_path, [{"name": "a", "url": "https://x/a", "sha256": "ABC"}])
    with pytest.raises(ValueError, match=r"give exactly one of 'url' and 'hub'"):
        _manifest(tmp_path, [{"name": "a"}])
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['sha265'\]"):
        _manifest(tmp_path, [{"name": "a", "url": "https://x/a", "sha265": "0"}])
