"""benchmarks/bench_step.py in every mode it documents, at a tiny size on the CPU, so the first run
on a GPU machine cannot fail on the harness: any variant subset (without `reference` too), the
compiled variant under the FLOP count and the op counter, FLOPs only, the profiler.

The variants run in this process (the harness spawns one process per variant; that wrapper is
replaced here to keep the test fast); read-compiled uses torch.compile's `eager` backend, which
traces the same fullgraph regions without generating code."""

from __future__ import annotations

import importlib.util
import queue
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_step.py"
TINY = ["--reference-scale", "--tiny-width", "--dry-run", "--compile-backend", "eager"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_step", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def in_process(bench, monkeypatch):
    def run(target, *args):
        results = queue.Queue()
        target(*args, results)
        return results.get_nowait()

    monkeypatch.setattr(bench, "_in_child", run)
    yield
    torch._dynamo.reset()


def test_timing_a_subset_without_reference_with_the_compiled_variant(bench, in_process):
    result = bench.main([*TINY, "--variants", "negclip,read-grouped,read-compiled", "--steps", "10", "--warmup", "5"])
    results = result["results"]
    assert list(results) == ["negclip", "read-grouped", "read-compiled"]
    for name, r in results.items():
        assert len(r["times"]) == 10 and r["flops_per_step"] > 0, name  # FLOPs counted, compiled one included
    report = result["report"]
    assert "read-grouped/negclip" in report and "read-compiled/negclip" in report
    assert not [line for line in report.splitlines() if "reference/" in line or line.startswith("| (c)")]
    # The compiled step is the static one: more padded FLOPs than the length-grouped step.
    assert results["read-compiled"]["flops_per_step"] > results["read-grouped"]["flops_per_step"]


def test_op_counts_of_the_compiled_variant_are_its_eager_ops(bench, in_process, capsys):
    result = bench.main([*TINY, "--count-ops", "--count-steps", "1", "--variants", "read-static,read-compiled"])
    counts = result["counts"]
    assert counts["read-compiled"]["aten_ops"] == counts["read-static"]["aten_ops"] > 0
    assert counts["read-static"]["host_syncs"] == 0
    assert "read-compiled (eager)" in capsys.readouterr().out


def test_flops_only_and_profile_modes(bench, in_process, tmp_path, capsys):
    flops = bench.main([*TINY, "--flops-only", "--variants", "read-static,reference"])["flops_per_sample"]
    assert flops["reference"] > flops["read-static"] > 0
    assert "FLOP ratio reference/read" not in capsys.readouterr().out  # no `read` ran: no ratio against it
    bench.main([*TINY, "--profile", str(tmp_path), "--variants", "negclip"])
    assert "aten::" in (tmp_path / "profile_negclip.txt").read_text()


def test_an_unknown_variant_is_named(bench):
    with pytest.raises(SystemExit, match="read-fast"):
        bench.main([*TINY, "--variants", "negclip,read-fast"])
