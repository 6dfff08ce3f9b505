"""Model and dataset ids are found (folder, cache, Hub) before anything loads; an unreachable Hub or
an unknown id is one line naming the id and what to do, within seconds."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from conftest import load_recipe, write_caption_jsonl
from huggingface_hub import constants

from read_trainer.cli import UsageError, run_recipe
from read_trainer.resolve import resolve_id

REPO = Path(__file__).resolve().parents[1]
run_read = load_recipe("run_read")


def closed_port_endpoint() -> str:
    """An endpoint nothing listens on: every connection is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def online_but_unreachable(monkeypatch, tmp_path):
    """Online mode, an empty Hub cache, and the Hub endpoint pointed at a closed local port."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(constants, "ENDPOINT", closed_port_endpoint())
    return tmp_path


def test_unknown_model_with_the_network_blocked_fails_in_seconds_naming_it(online_but_unreachable, tiny_models,
                                                                            capsys):
    folder = online_but_unreachable
    write_caption_jsonl(folder)
    start = time.perf_counter()
    code = run_recipe(run_read.main, ["--model_name_or_path", "nobody/no-such-clip", "--decoder_name_or_path",
                                      tiny_models[1], "--train_file", str(folder / "train.jsonl"),
                                      "--output_dir", str(folder / "out"), "--report_to", "none"])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err.strip()
    assert code == 2 and elapsed < 10, (code, elapsed)
    assert len(err.splitlines()) == 1 and err.startswith("error: model 'nobody/no-such-clip'")
    assert "could not be reached" in err and "`hf download nobody/no-such-clip`" in err and "HF_HUB_OFFLINE=1" in err
    assert not (folder / "out").exists()  # nothing was loaded or written


def test_a_hub_that_accepts_but_never_answers_times_out(online_but_unreachable, monkeypatch):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # connections complete in the backlog; no reply ever comes
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
    start = time.perf_counter()
    with pytest.raises(UsageError, match=r"dataset 'someone/captions' .*ReadTimeout.*--repo-type dataset"):
        resolve_id("someone/captions", "dataset", timeout=1.0)
    assert time.perf_counter() - start < 5
    silent.close()


def test_a_cached_model_is_used_and_the_process_goes_offline(online_but_unreachable):
    # The Hub cache layout: refs/main names the snapshot folder holding the files.
    repo = Path(constants.HF_HUB_CACHE) / "models--someone--tiny-clip"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("0" * 40) / "config.json").write_text("{}")
    assert resolve_id("someone/tiny-clip").source == "cache"
    assert constants.HF_HUB_OFFLINE and os.environ["HF_HUB_OFFLINE"] == "1"
    assert resolve_id("someone/tiny-clip").source == "cache"  # offline now, still found


def test_local_folders_and_path_like_ids(tmp_path):
    assert resolve_id(str(tmp_path)).source == "folder"
    with pytest.raises(UsageError, match=r"dataset folder './no/such/folder' does not exist"):
        resolve_id("./no/such/folder", "dataset")


def test_offline_mode_names_the_id_from_the_command_line(tmp_path):
    """The recipe as a user runs it: HF_HUB_OFFLINE=1, an id that is not cached."""
    write_caption_jsonl(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "recipes" / "run_read.py"), "--model_name_or_path",
                           "nobody/no-such-clip", "--train_file", str(tmp_path / "train.jsonl"),
                           "--output_dir", str(tmp_path / "out"), "--report_to", "none"],
                          capture_output=True, text=True, env=env, timeout=120)
    elapsed = time.perf_counter() - start
    lines = [l for l in done.stderr.splitlines() if l.startswith("error:")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert lines == [lines[0]] and "model 'nobody/no-such-clip' is not in the local Hugging Face cache" in lines[0]
    assert "Traceback" not in done.stderr
    print(f"offline failure, interpreter start included: {elapsed:.1f}s")


@pytest.mark.parametrize("error_code, expected", [
    ("RepoNotFound", r"model 'nobody/no-such-clip' was not found on the Hub and is not a local folder"),
    ("GatedRepo", r"model 'nobody/no-such-clip' is gated: accept its terms on the Hub, then `hf auth login`"),
])
def test_a_reachable_hub_that_has_no_such_repo(online_but_unreachable, monkeypatch, error_code, expected):
    """A local server answering like the Hub does for a missing or gated repository."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Hub(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404 if error_code == "RepoNotFound" else 403)
            self.send_header("X-Error-Code", error_code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "no"}')

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    try:
        with pytest.raises(UsageError, match=expected):
            resolve_id("nobody/no-such-clip")
    finally:
        server.shutdown()
