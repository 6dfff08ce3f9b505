"""The benchmark annotations ship inside the package, intact, with their licences."""

import hashlib
import shutil

import pytest

from read_trainer.evaluation.bundled import (
    BUNDLED_FOLDERS,
    ChecksumError,
    bundled_data_root,
    default_data_root,
    read_checksums,
    verify_bundled,
)
from read_trainer.evaluation.suite import load_named


def test_every_shipped_file_matches_its_recorded_sha256():
    root = bundled_data_root()
    assert verify_bundled() == {"sugarcrepe": 7, "sugarcrepe_pp": 5, "valse": 11}
    for name in BUNDLED_FOLDERS:
        folder = root / name
        listed = set(read_checksums(folder))
        # Every annotation file is covered by the checksums (none shipped unchecked).
        assert listed == {p.name for p in folder.glob("*.json")}
        # Independently recomputed digest of one file per folder.
        first = sorted(listed)[0]
        assert read_checksums(folder)[first] == hashlib.sha256((folder / first).read_bytes()).hexdigest()


def test_an_altered_or_missing_file_is_named(tmp_path):
    copy = tmp_path / "annotations"
    shutil.copytree(bundled_data_root(), copy)
    with open(copy / "valse" / "existence.json", "ab") as f:
        f.write(b" ")
    with pytest.raises(ChecksumError, match=r"valse/existence\.json: sha256 .* differs"):
        verify_bundled(copy)
    (copy / "valse" / "existence.json").unlink()
    with pytest.raises(ChecksumError, match=r"valse/existence\.json: listed in SHA256SUMS but missing"):
        verify_bundled(copy)


def test_each_folder_states_source_and_licence():
    root = bundled_data_root()
    licences = {"sugarcrepe": "MIT License", "sugarcrepe_pp": "CC BY 4.0", "valse": "MIT License"}
    for name, licence in licences.items():
        text = (root / name / "LICENSE.md").read_text(encoding="utf-8")
        assert licence in text and "commit" in text


def test_default_data_root_is_the_bundled_folder_for_shipped_benchmarks(tmp_path):
    assert default_data_root(None, ["sugarcrepe_pp_tot"]) == bundled_data_root()
    assert len(load_named("sugarcrepe_pp_tot", default_data_root(None, ["sugarcrepe_pp_tot"]))) == 4757
    assert default_data_root(tmp_path, ["whatsup"]) == tmp_path
    with pytest.raises(ValueError, match=r"\['whatsup', 'crepe'\] are not shipped.*--data_root"):
        default_data_root(None, ["paper"])


def test_a_built_wheel_ships_the_annotations_licences_and_checksums(tmp_path):
    """What ``pip install`` of the project installs, not only what a checkout holds."""
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(repo, source, ignore=shutil.ignore_patterns(".git", ".venv", "outputs", ".cache", "build",
                                                                "dist", "*.egg-info", "__pycache__", "notebooks"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True)
    (wheel,) = (tmp_path / "dist").glob("read_trainer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in BUNDLED_FOLDERS:
        folder = f"read_trainer/evaluation/annotations/{name}/"
        expected = {folder + f for f in read_checksums(bundled_data_root() / name)} | {
            folder + "LICENSE.md", folder + "SHA256SUMS"}
        assert expected <= names, sorted(expected - names)
    # The demo's base checkpoints travel the same way (read_trainer/demo/shipped_base.py).
    shipped = repo / "read_trainer" / "demo" / "base_checkpoints"
    expected = {f"read_trainer/demo/base_checkpoints/{f}" for f in [*read_checksums(shipped), "SHA256SUMS"]}
    assert expected <= names, sorted(expected - names)
