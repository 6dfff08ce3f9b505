"""Loaders: the real SugarCrepe / SugarCrepe++ / VALSE annotation files (with stand-in images made
here), and hand-written files in the official formats of the benchmarks not shipped with the package."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from read_trainer.evaluation.aro import load_aro_order, load_aro_vg_attribution, load_aro_vg_relation, pre_caption
from read_trainer.evaluation.bundled import bundled_data_root
from read_trainer.evaluation.crepe import load_crepe
from read_trainer.evaluation.embedding import load_image
from read_trainer.evaluation.hub_datasets import load_choice_from_hub, load_winoground_from_hub
from read_trainer.evaluation.items import BenchmarkDataError
from read_trainer.evaluation.retrieval import load_karpathy_retrieval
from read_trainer.evaluation.sugarcrepe import load_sugarcrepe, load_sugarcrepe_pp_itt, load_sugarcrepe_pp_tot
from read_trainer.evaluation.suite import expand_names, load_named
from read_trainer.evaluation.valse import load_valse
from read_trainer.evaluation.whatsup import load_whatsup
from read_trainer.evaluation.winoground import load_winoground
from read_trainer.evaluation.zeroshot import load_imagefolder

# The SugarCrepe / SugarCrepe++ / VALSE annotations shipped inside the package.
BENCHDATA = bundled_data_root()

SUGARCREPE_COUNTS = {"add_att": 692, "add_obj": 2062, "replace_att": 788, "replace_obj": 1652,
                     "replace_rel": 1406, "swap_att": 666, "swap_obj": 245}
SUGARCREPE_PP_COUNTS = {"replace_att": 788, "replace_obj": 1652, "replace_rel": 1406, "swap_att": 666, "swap_obj": 245}
# Samples with mturk.caption >= 2, per file (of 1042, 779, 141, 916, 756, 1000, 1000, 534, 1000, 1000, 614).
VALSE_VALID = {"existence": 505, "plurals": 851, "counting-hard": 868, "counting-small-quant": 900,
               "counting-adversarial": 691, "relations": 535, "action-replacement": 648, "actant-swap": 949,
               "coreference-standard": 708, "coreference-hard": 104, "foil-it": 943}


def png_bytes(color=(120, 30, 200), size=(48, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def write_images(root: Path, names, data: bytes | None = None) -> Path:
    """Stand-in images: the same small PNG under every referenced name (the loaders only need files)."""
    data = data or png_bytes()
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture(scope="module")
def coco_images(tmp_path_factory):
    names = {row["filename"] for f in (BENCHDATA / "sugarcrepe").glob("*.json")
             for row in json.loads(f.read_text()).values()}
    return write_images(tmp_path_factory.mktemp("coco"), names)


def test_sugarcrepe_real_files(coco_images):
    bench = load_sugarcrepe(BENCHDATA / "sugarcrepe", coco_images)
    assert {k: len(v) for k, v in bench.subsets.items()} == SUGARCREPE_COUNTS
    assert len(bench) == 7511 and bench.averaging == "macro"
    item = bench.subsets["swap_att"][0]
    assert item.texts == ("Blue bathroom with two white towels hanging by the shower.",
                          "White bathroom with two blue towels hanging by the shower.")
    assert item.images[0].path == str(coco_images / "000000565045.jpg")
    assert {k: len(v) for k, v in load_sugarcrepe(BENCHDATA / "sugarcrepe", coco_images, limit=3).subsets.items()} \
        == dict.fromkeys(SUGARCREPE_COUNTS, 3)


def test_sugarcrepe_pp_real_files(coco_images):
    itt = load_sugarcrepe_pp_itt(BENCHDATA / "sugarcrepe_pp", coco_images)
    assert {k: len(v) for k, v in itt.subsets.items()} == SUGARCREPE_PP_COUNTS and len(itt) == 4757
    tot = load_sugarcrepe_pp_tot(BENCHDATA / "sugarcrepe_pp")  # no image root at all
    assert len(tot) == 4757 and not tot.all_images() and tot.needs_text_text
    first = tot.subsets["replace_att"][0]
    assert first.texts[1] == "A small room with a tan toilet and sink combination positioned in close proximity " \
                             "to one another."


def test_valse_real_files_keep_only_valid_samples(tmp_path):
    files = {row["image_file"] for f in (BENCHDATA / "valse").glob("*.json") for row in json.loads(f.read_text()).values()}
    images = write_images(tmp_path, files)
    bench = load_valse(BENCHDATA / "valse", images)
    assert {k: len(v) for k, v in bench.subsets.items()} == VALSE_VALID
    assert len(bench) == 7702 and bench.averaging == "micro"
    assert bench.groups["counting"] == ["counting-hard", "counting-small-quant", "counting-adversarial"]
    # The 24 samples whose foil equals the caption all fail validation (mturk.caption == 0).
    assert not any(i.texts[0] == i.texts[1] for items in bench.subsets.values() for i in items)


def test_valse_image_root_per_source(tmp_path):
    piece = json.loads((BENCHDATA / "valse" / "existence.json").read_text())
    write_images(tmp_path / "v7w", {r["image_file"] for r in piece.values()})
    bench = load_valse(BENCHDATA / "valse", {"visual7w": tmp_path / "v7w"}, pieces=("existence",), limit=2)
    assert [Path(i.images[0].path).parent for i in bench.subsets["existence"]] == [tmp_path / "v7w"] * 2
    with pytest.raises(KeyError, match="SWiG"):
        load_valse(BENCHDATA / "valse", {"visual7w": tmp_path / "v7w"}, pieces=("actant-swap",))


def test_missing_files_are_named_with_a_hint(tmp_path, coco_images):
    with pytest.raises(BenchmarkDataError, match=r"swap_obj\.json(.|\n)*RAIVNLab/sugar-crepe"):
        load_sugarcrepe(tmp_path, coco_images, subsets=("swap_obj",))
    with pytest.raises(BenchmarkDataError, match=r"000000222235\.jpg(.|\n)*val2017"):
        load_sugarcrepe(BENCHDATA / "sugarcrepe", tmp_path, subsets=("swap_obj",))
    with pytest.raises(BenchmarkDataError, match="Heidelberg-NLP/VALSE"):
        load_valse(tmp_path, tmp_path)


def test_whatsup_official_layout(tmp_path):
    ann, root = tmp_path / "ann", tmp_path / "data"
    ann.mkdir()
    controlled = [{"image_path": "data/controlled_images/mug_on_table.jpeg",
                   "caption_options": ["A mug on a table", "A mug under a table", "A mug to the left of a table",
                                       "A mug to the right of a table"]}]
    (ann / "controlled_images_dataset.json").write_text(json.dumps(controlled))
    (ann / "controlled_clevr_dataset.json").write_text(json.dumps(controlled))
    (ann / "coco_qa_one_obj.json").write_text(json.dumps([[139, "A photo of a dog on the left",
                                                           "A photo of a dog on the right"]]))
    (ann / "coco_qa_two_obj.json").write_text(json.dumps([[139, "A dog to the left of a cat",
                                                           "A dog to the right of a cat"]]))
    (ann / "vg_qa_one_obj.json").write_text(json.dumps([[2345, "A photo of a car on the top",
                                                         "A photo of a car on the bottom"]]))
    (ann / "vg_qa_two_obj.json").write_text(json.dumps([[2345, "A car behind a tree", "A car in front of a tree"]]))
    write_images(root, ["controlled_images/mug_on_table.jpeg", "val2017/000000000139.jpg", "vg_images/2345.jpg"])
    bench = load_whatsup(ann, root)
    assert len(bench.subsets["controlled_a"][0].texts) == 4
    assert bench.subsets["coco_qa_one"][0].images[0].path == str(root / "val2017" / "000000000139.jpg")
    assert bench.averaging == "macro_of_groups" and set(bench.groups) == {"controlled", "coco", "vg"}


def test_crepe_csv_with_region_crop(tmp_path):
    ann = tmp_path / "prod_hard_negatives" / "swap"
    ann.mkdir(parents=True)
    (ann / "prod_vg_hard_negs_swap_complexity_4.csv").write_text(
        "image_id,x,y,width,height,caption,hard_negs\n"
        "2345,4,6,20,10,a dog on a red mat,\"['a mat on a red dog', 'a red dog on a mat']\"\n"
        "777,0,0,8,8,a tall tree,\"['a tree tall']\"\n")
    write_images(tmp_path / "vg", ["VG_100K/2345.jpg", "VG_100K_2/777.jpg"])
    bench = load_crepe(tmp_path / "prod_hard_negatives", tmp_path / "vg")
    items = bench.subsets["prod_vg_hard_negs_swap_complexity_4"]
    assert items[0].texts == ("a dog on a red mat", "a mat on a red dog", "a red dog on a mat")
    assert items[0].images[0].box == (4, 6, 24, 16) and load_image(items[0].images[0]).size == (20, 10)
    assert items[1].images[0].path.endswith("VG_100K_2/777.jpg")
    with pytest.raises(BenchmarkDataError, match="not found"):
        load_crepe(tmp_path / "prod_hard_negatives", tmp_path / "nowhere")


def test_aro_vg_relation_and_attribution(tmp_path):
    rel = [{"image_path": "1.jpg", "bbox_x": 1, "bbox_y": 2, "bbox_w": 10, "bbox_h": 12, "relation_name": "on",
            "true_caption": "the cup is on the table", "false_caption": "the table is on the cup"},
           {"image_path": "1.jpg", "bbox_x": 0, "bbox_y": 0, "bbox_w": 5, "bbox_h": 5, "relation_name": "under",
            "true_caption": "the cat is under the bed", "false_caption": "the bed is under the cat"}]
    att = [{"image_path": "1.jpg", "bbox_x": 0, "bbox_y": 0, "bbox_w": 5, "bbox_h": 5, "attributes": ["red", "big"],
            "true_caption": "the red car and the big tree", "false_caption": "the big car and the red tree"}] * 3
    (tmp_path / "visual_genome_relation.json").write_text(json.dumps(rel))
    (tmp_path / "visual_genome_attribution.json").write_text(json.dumps(att))
    write_images(tmp_path / "images", ["1.jpg"])
    r = load_aro_vg_relation(tmp_path, tmp_path / "images")
    assert sorted(r.subsets) == ["on", "under"]
    assert r.subsets["on"][0].texts[0] == "the cup is on the table"  # true caption first (ARO stores it second)
    assert r.subsets["on"][0].images[0].box == (1, 2, 11, 14)
    assert list(load_aro_vg_attribution(tmp_path, tmp_path / "images", min_count=3).subsets) == ["red_big"]
    assert not load_aro_vg_attribution(tmp_path, tmp_path / "images").subsets  # ARO drops pairs with < 25 samples


def test_aro_order_perturbations_are_seeded_shuffles(tmp_path):
    tags = {"a": "DT", "white": "JJ", "dog": "NN", "runs": "VBZ", "on": "IN", "the": "DT", "green": "JJ",
            "grass": "NN"}
    tagger = lambda text: [(w, tags.get(w, "NN")) for w in text.lower().rstrip(".").split()]  # noqa: E731
    (tmp_path / "coco_karpathy_test.json").write_text(json.dumps(
        [{"image": "val2014/x.jpg", "caption": ["A white dog runs on the green grass.", "A dog runs."]}]))
    write_images(tmp_path, ["val2014/x.jpg"])
    bench = load_aro_order(tmp_path / "coco_karpathy_test.json", tmp_path, tagger=tagger, seed=1)
    items = bench.subsets["test"]
    assert len(items) == 2 and len(items[0].texts) == 5
    assert items[0].texts[0] == pre_caption("A white dog runs on the green grass.") == \
        "a white dog runs on the green grass"
    assert all(sorted(t.split()) == sorted(items[0].texts[0].split()) for t in items[0].texts[1:])
    again = load_aro_order(tmp_path / "coco_karpathy_test.json", tmp_path, tagger=tagger, seed=1)
    assert again.subsets["test"][0].texts == items[0].texts


def test_winoground_local_release(tmp_path):
    rows = [{"id": 0, "image_0": "ex_0_img_0", "image_1": "ex_0_img_1", "caption_0": "an old person kisses a young person",
             "caption_1": "a young person kisses an old person", "collapsed_tag": "Object"},
            {"id": 1, "image_0": "ex_1_img_0", "image_1": "ex_1_img_1", "caption_0": "the dog bit the man",
             "caption_1": "the man bit the dog", "collapsed_tag": "Relation"}]
    (tmp_path / "examples.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    write_images(tmp_path / "images", [f"ex_{i}_img_{k}.png" for i in range(2) for k in range(2)])
    bench = load_winoground(tmp_path)
    assert sorted(bench.subsets) == ["Object", "Relation"] and bench.primary_metric == "group"
    assert bench.subsets["Relation"][0].images[1].path.endswith("ex_1_img_1.png")


def test_karpathy_retrieval_split_and_paths(tmp_path):
    doc = {"images": [
        {"filepath": "val2014", "filename": "a.jpg", "split": "test", "sentences": [{"raw": "a cat "}, {"raw": "a pet"}]},
        {"filepath": "val2014", "filename": "b.jpg", "split": "train", "sentences": [{"raw": "a dog"}]},
        {"filepath": "val2014", "filename": "c.jpg", "split": "test", "sentences": [{"raw": "a car"}]}]}
    (tmp_path / "dataset_coco.json").write_text(json.dumps(doc))
    write_images(tmp_path / "img", ["val2014/a.jpg", "val2014/c.jpg"])
    task = load_karpathy_retrieval(tmp_path / "dataset_coco.json", tmp_path / "img")
    assert task.captions == ["a cat", "a pet", "a car"] and task.owners == [0, 0, 1]
    assert task.image_refs[1].path == str(tmp_path / "img" / "val2014" / "c.jpg")


def test_imagefolder_and_named_layout(tmp_path):
    write_images(tmp_path / "zeroshot", ["golden_retriever/1.png", "golden_retriever/2.png", "tabby/1.png"])
    task = load_imagefolder(tmp_path / "zeroshot", templates=["a photo of a {}.", "a {} photo."], limit=1)
    assert task.classnames == ["golden retriever", "tabby"] and task.labels == [0, 1]
    assert task.prompts()[:2] == ["a photo of a golden retriever.", "a golden retriever photo."]
    (tmp_path / "zeroshot" / "classnames.txt").write_text("dog\ncat\n")
    assert load_named("zeroshot", tmp_path).classnames == ["dog", "cat"]


def test_suite_names():
    assert expand_names(["paper"]) == ["whatsup", "valse", "crepe", "sugarcrepe", "sugarcrepe_pp_itt",
                                       "sugarcrepe_pp_tot"]
    assert expand_names(["sugarcrepe", "paper"])[0] == "sugarcrepe" and len(expand_names(["all"])) == 14
    with pytest.raises(ValueError, match="unknown benchmark"):
        expand_names(["sugercrepe"])
    assert len(load_named("sugarcrepe_pp_tot", BENCHDATA)) == 4757  # the bundled layout works as is


def test_hub_loaders_through_a_local_parquet_folder(tmp_path):
    """The hub code path (``load_dataset(id)``), pointed at a local folder of parquet files."""
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

    red, blue = png_bytes((255, 0, 0)), png_bytes((0, 0, 255))
    features = Features({"image": ImageFeature(), "caption": Value("string"), "negative_caption": Value("string"),
                         "category": Value("string")})
    Dataset.from_dict({"image": [{"bytes": red, "path": None}, {"bytes": blue, "path": None}],
                       "caption": ["a red square", "a blue square"],
                       "negative_caption": ["a blue square", "a red square"],
                       "category": ["color", "color"]}, features=features).to_parquet(
        str(tmp_path / "choice" / "test-00000-of-00001.parquet"))
    bench = load_choice_from_hub(str(tmp_path / "choice"), "toy", subset_column="category")
    item = bench.subsets["color"][1]
    assert item.texts == ("a blue square", "a red square")
    assert load_image(item.images[0]).getpixel((0, 0)) == (0, 0, 255)
    assert len({im.key for im in bench.all_images()}) == 2

    wino = Features({"id": Value("int32"), "image_0": ImageFeature(), "image_1": ImageFeature(),
                     "caption_0": Value("string"), "caption_1": Value("string"), "collapsed_tag": Value("string")})
    Dataset.from_dict({"id": [0], "image_0": [{"bytes": red, "path": None}], "image_1": [{"bytes": blue, "path": None}],
                       "caption_0": ["red then blue"], "caption_1": ["blue then red"], "collapsed_tag": ["Object"]},
                      features=wino).to_parquet(str(tmp_path / "wino" / "test-00000-of-00001.parquet"))
    w = load_winoground_from_hub(str(tmp_path / "wino"))
    assert [load_image(r).getpixel((0, 0)) for r in w.subsets["Object"][0].images] == [(255, 0, 0), (0, 0, 255)]
