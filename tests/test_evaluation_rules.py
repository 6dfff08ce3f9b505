"""Decision rules, aggregation and the evaluate metric on hand-built numbers with known answers."""

from __future__ import annotations

import pytest
import torch

from read_trainer.evaluation import rules
from read_trainer.evaluation.items import Benchmark, ImageRef, Item, ItemScores
from read_trainer.evaluation.results import PAPER_SIX, BenchmarkResult, paper_average, summarize
from read_trainer.evaluation.retrieval import RetrievalTask, pessimistic_ranks
from read_trainer.evaluation.scoring import score_benchmark
from read_trainer.evaluation.suite import run_suite
from read_trainer.evaluation.zeroshot import ZeroShotTask


class FakeEmbedder:
    """Hand-chosen vectors by text and by image path; counts what it was asked to embed."""

    def __init__(self, texts: dict[str, list[float]], images: dict[str, list[float]] | None = None):
        self.text_vectors, self.image_vectors = texts, images or {}
        self.text_calls: list[str] = []
        self.image_calls: list[str] = []

    @staticmethod
    def _rows(vectors):
        return torch.nn.functional.normalize(torch.tensor(vectors, dtype=torch.float32).reshape(len(vectors), -1), dim=-1)

    def embed_texts(self, texts):
        self.text_calls += list(texts)
        return self._rows([self.text_vectors[t] for t in texts]) if texts else torch.empty(0, 2)

    def embed_images(self, refs):
        self.image_calls += [r.path for r in refs]
        return self._rows([self.image_vectors[r.path] for r in refs]) if refs else torch.empty(0, 2)


def test_decide_counts_ties_separately_and_never_as_correct():
    assert rules.decide([(0.5, 0.4), (0.5, 0.1)]) == "correct"
    assert rules.decide([(0.5, 0.5), (0.5, 0.1)]) == "tie"
    assert rules.decide([(0.5, 0.5), (0.4, 0.6)]) == "wrong"  # a loss anywhere beats a tie
    assert rules.decide([]) == "correct"


@pytest.mark.parametrize("row, expected", [
    ([0.9, 0.1], "correct"), ([0.1, 0.9], "wrong"), ([0.3, 0.3], "tie"),
    ([0.5, 0.4, 0.5, 0.1], "tie"), ([0.5, 0.4, 0.6, 0.1], "wrong"), ([0.7, 0.4, 0.6, 0.1], "correct"),
])
def test_positive_beats_all(row, expected):
    assert rules.positive_beats_all(ItemScores([row])) == {"accuracy": expected}


def test_sugarcrepe_pp_rules():
    # ITT: both paraphrases must beat the negative for the image.
    assert rules.sugarcrepe_pp_itt(ItemScores([[0.5, 0.4, 0.3]]))["accuracy"] == "correct"
    assert rules.sugarcrepe_pp_itt(ItemScores([[0.5, 0.2, 0.3]]))["accuracy"] == "wrong"
    assert rules.sugarcrepe_pp_itt(ItemScores([[0.5, 0.3, 0.3]]))["accuracy"] == "tie"
    # TOT: s(p1,p2) must beat s(p1,n) and s(p2,n). Rows/cols: p1, p2, n.
    tt = [[1, 0.8, 0.7], [0.8, 1, 0.6], [0.7, 0.6, 1]]
    assert rules.sugarcrepe_pp_tot(ItemScores([], tt))["accuracy"] == "correct"
    tt = [[1, 0.8, 0.7], [0.8, 1, 0.9], [0.7, 0.9, 1]]
    assert rules.sugarcrepe_pp_tot(ItemScores([], tt))["accuracy"] == "wrong"
    tt = [[1, 0.8, 0.8], [0.8, 1, 0.1], [0.8, 0.1, 1]]
    assert rules.sugarcrepe_pp_tot(ItemScores([], tt))["accuracy"] == "tie"


def test_winoground_rule():
    # s[image][caption]; each image prefers its caption, each caption its image.
    assert rules.winoground(ItemScores([[0.9, 0.1], [0.2, 0.8]])) == {"text": "correct", "image": "correct",
                                                                       "group": "correct"}
    # text right (0.5 > 0.4, 0.7 > 0.6) but caption 0 prefers image 1 (0.5 < 0.6): image wrong, group wrong.
    s = [[0.5, 0.4], [0.6, 0.7]]
    assert rules.winoground(ItemScores(s)) == {"text": "correct", "image": "wrong", "group": "wrong"}
    s = [[0.5, 0.5], [0.1, 0.9]]
    assert rules.winoground(ItemScores(s)) == {"text": "tie", "image": "correct", "group": "tie"}


def _bench(averaging="macro", groups=None):
    return Benchmark("toy", {"a": [], "b": [], "c": []}, rules.positive_beats_all, averaging=averaging, groups=groups)


DECISIONS = {  # a: 1/2 correct (1 tie); b: 3/4; c: 0/1
    "a": [{"accuracy": "correct"}, {"accuracy": "tie"}],
    "b": [{"accuracy": "correct"}] * 3 + [{"accuracy": "wrong"}],
    "c": [{"accuracy": "wrong"}],
}


def test_summarize_macro_micro_ties_and_rule_words():
    r = summarize(_bench("macro"), DECISIONS)
    assert r.subsets["a"] == {"accuracy": 50.0, "correct": 1, "ties": 1, "n": 2}
    assert r.metrics["macro"] == pytest.approx((50 + 75 + 0) / 3)
    assert r.metrics["micro"] == pytest.approx(100 * 4 / 7)
    assert r.metrics["ties"] == 1 and r.metrics["n"] == 7
    assert r.total == r.metrics["macro"] and "macro" in r.averaging
    r = summarize(_bench("micro", {"g1": ["a", "b"], "g2": ["c"]}), DECISIONS)
    assert r.total == pytest.approx(100 * 4 / 7) and "micro" in r.averaging
    assert r.groups == {"g1": pytest.approx(100 * 4 / 6), "g2": 0.0}  # micro benchmark: pooled groups
    r = summarize(_bench("macro_of_groups", {"g1": ["a", "b"], "g2": ["c"]}), DECISIONS)
    assert r.groups == {"g1": pytest.approx(62.5), "g2": 0.0}  # macro inside each group
    assert r.total == pytest.approx(31.25)


def test_flat_log_keys():
    flat = summarize(_bench("micro", {"g1": ["a", "b"]}), DECISIONS).flat("eval")
    assert flat["eval/toy/a"] == 50.0 and flat["eval/toy/total"] == pytest.approx(400 / 7)
    assert "eval/toy/group/g1" in flat and "eval/toy/macro" in flat


def test_paper_average_needs_all_six():
    results = {name: BenchmarkResult(name, float(i), "", {}, {}, ["accuracy"]) for i, name in enumerate(PAPER_SIX)}
    assert paper_average(results) == pytest.approx(sum(range(6)) / 6)
    del results["crepe"]
    assert paper_average(results) is None


def test_score_benchmark_with_fake_embedder_known_answers_and_dedup():
    img = {"i1": [1, 0], "i2": [0, 1]}
    txt = {"cat": [1, 0.1], "dog": [0.1, 1], "same": [1, 1]}
    bench = Benchmark("toy", {
        "s": [Item("1", ("cat", "dog"), (ImageRef("i1"),)),    # correct
              Item("2", ("cat", "dog"), (ImageRef("i2"),)),    # wrong
              Item("3", ("same", "same"), (ImageRef("i1"),))],  # exact tie: identical texts share one embedding
    }, rules.positive_beats_all)
    emb = FakeEmbedder(txt, img)
    r = score_benchmark(bench, emb)
    assert [d["accuracy"] for d in r.decisions["s"]] == ["correct", "wrong", "tie"]
    assert r.subsets["s"]["ties"] == 1 and r.total == pytest.approx(100 / 3)
    assert sorted(emb.text_calls) == ["cat", "dog", "same"] and sorted(emb.image_calls) == ["i1", "i2"]


def test_run_suite_embeds_shared_inputs_once_across_benchmarks():
    txt = {"cat": [1, 0.1], "dog": [0.1, 1], "a cat": [1, 0.2]}
    img = {"i1": [1, 0]}
    b1 = Benchmark("b1", {"s": [Item("1", ("cat", "dog"), (ImageRef("i1"),))]}, rules.positive_beats_all)
    b2 = Benchmark("b2", {"s": [Item("1", ("cat", "a cat", "dog"))]}, rules.sugarcrepe_pp_tot, needs_text_text=True)
    emb = FakeEmbedder(txt, img)
    results = run_suite([b1, b2], emb)
    assert results["b1"].total == 100.0
    assert results["b2"].total == 100.0  # s(cat, a cat) beats both s(cat, dog) and s(a cat, dog)
    assert sorted(emb.text_calls) == ["a cat", "cat", "dog"] and emb.image_calls == ["i1"]


def test_pessimistic_ranks_count_ties_against_the_query():
    scores = torch.tensor([[0.9, 0.5, 0.9], [0.1, 0.8, 0.2]])
    correct = torch.tensor([[True, False, False], [False, True, False]])
    ranks, ties = pessimistic_ranks(scores, correct)
    assert ranks.tolist() == [1, 0] and ties.tolist() == [True, False]


def test_retrieval_and_zeroshot_with_fake_embedder():
    img = {"i0": [1, 0], "i1": [0, 1], "i2": [1, 1]}
    txt = {"x0": [1, 0.05], "x1": [0.05, 1], "x2": [0.9, 1], "y": [1, 0.0], "a photo of a red.": [1, 0],
           "a photo of a blue.": [0, 1]}
    task = RetrievalTask("ret", [ImageRef(k) for k in ("i0", "i1", "i2")], ["x0", "y", "x1", "x2"], [0, 0, 1, 2])
    r = task.evaluate(FakeEmbedder(txt, img))
    # image→text: i0 best is y (tie-free), i1 → x1, i2 → x2 (0.9,1 closest to 1,1): all R@1.
    assert r.subsets["image_to_text"]["R@1"] == 100.0
    # text→image: x0 → i0, y → i0, x1 → i1, x2 → i2? cos(x2,i2)=.998 > cos(x2,i1)=.74: yes.
    assert r.subsets["text_to_image"]["R@1"] == 100.0 and r.total == 100.0
    zs = ZeroShotTask("zs", [ImageRef("i0"), ImageRef("i1"), ImageRef("i2")], [0, 1, 1], ["red", "blue"])
    z = zs.evaluate(FakeEmbedder(txt, img))
    # i2 = (1,1) ties red and blue exactly: a miss at top-1, a hit at top-5 (only 2 classes).
    assert z.metrics["top1"] == pytest.approx(200 / 3) and z.metrics["ties"] == 1 and z.metrics["top5"] == 100.0


def test_evaluate_metric_module_loads_offline_by_path():
    import evaluate

    from read_trainer.evaluation.metric import METRIC_PATH, load_metric

    metric = evaluate.load(METRIC_PATH)
    out = metric.compute(scores=[[0.3, 0.2], [0.1, 0.1], [0.1, 0.2, 0.0]], subsets=["a", "a", "b"])
    assert out["accuracy"] == 25.0 and out["micro"] == pytest.approx(100 / 3) and out["ties"] == 1
    assert "macro" in out["averaging"]
    tot = load_metric("sugarcrepe_pp_tot").compute(scores=[[0.8, 0.7, 0.6], [0.8, 0.9, 0.1]],
                                                     subsets=["x", "x"])
    assert tot["accuracy"] == 50.0
    wino = load_metric("winoground").compute(scores=[[0.9, 0.1, 0.2, 0.8], [0.5, 0.4, 0.6, 0.7]],
                                             subsets=["x", "x"], averaging="micro")
    assert wino["accuracy"] == 50.0 and wino["text"] == 100.0 and wino["image"] == 50.0
