"""LoRA mode, WiSE-FT and the push path (intercepted at the huggingface_hub client)."""

import fnmatch
import json
import logging
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import Future
from pathlib import Path

import pytest
import torch
from conftest import load_recipe, make_rows
from huggingface_hub import HfApi, ModelCard
from transformers import CLIPModel, CLIPProcessor

from read_trainer.cli import UsageError
from read_trainer.config import ReadConfig
from read_trainer.evaluation.bundled import bundled_data_root
from read_trainer.trainer import ReadTrainer
from read_trainer.wise import interpolate_state_dicts, wise_ft

REPO = Path(__file__).resolve().parents[1]


def _args(tiny_models, tmp_path, **kw):
    clip_dir, t5_dir = tiny_models
    options = dict(output_dir=str(tmp_path / "out"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                   per_device_train_batch_size=4, max_steps=4, learning_rate=5e-3, warmup_steps=0,
                   report_to="none", use_cpu=True, save_strategy="no", logging_steps=1)
    options.update(kw)
    return ReadConfig(**options)


def _embeddings(clip, batch):
    with torch.no_grad():
        t = clip.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).pooler_output
        i = clip.get_image_features(pixel_values=batch["pixel_values"]).pooler_output
    return t, i


@pytest.mark.parametrize("towers", ["text", "both"])
def test_lora_trains_adapters_only_and_exports_the_merged_plain_model(tiny_models, tmp_path, towers):
    args = _args(tiny_models, tmp_path, use_peft=True, lora_r=4, lora_alpha=8, lora_dropout=0.0,
                 lora_towers=towers, activation_checkpointing=True, save_adapter=True)
    base = CLIPModel.from_pretrained(tiny_models[0]).state_dict()
    trainer = ReadTrainer(args=args, train_dataset=make_rows(16, paraphrases=True))
    model = trainer.model
    lora_names = [n for n, p in model.named_parameters() if "lora_" in n]
    assert lora_names and all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)
    assert any("vision_model" in n for n in lora_names) == (towers == "both")
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    trainer.train()

    # Base weights bit-identical, adapters and the decoder projection changed.
    for name, value in model.base_clip().state_dict().items():
        if "lora_" in name:
            continue
        plain = name.replace("base_layer.", "")
        assert torch.equal(value, base[plain]), name
    assert any(not torch.equal(p, lora_before[n]) for n, p in model.named_parameters() if "lora_" in n)

    export = tmp_path / "export"
    trainer.save_model(str(export))
    assert (export / "adapter" / "adapter_config.json").is_file()
    merged = CLIPModel.from_pretrained(export).eval()
    batch = trainer.data_collator(make_rows(4))
    model.eval()
    t_peft, i_peft = _embeddings(model.clip, batch)
    t_merged, i_merged = _embeddings(merged, batch)
    torch.testing.assert_close(t_merged, t_peft, atol=1e-5, rtol=0)
    torch.testing.assert_close(i_merged, i_peft, atol=1e-5, rtol=0)
    weights = json.loads((export / "config.json").read_text())
    assert weights["architectures"] == ["CLIPModel"]

    child = textwrap.dedent(f"""
        import sys
        sys.modules["peft"] = None; sys.modules["read_trainer"] = None
        from transformers import CLIPModel
        model, info = CLIPModel.from_pretrained({str(export)!r}, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        assert not any("lora" in k for k in model.state_dict())
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_lora_checkpoint_resume_restores_adapters(tiny_models, tmp_path):
    args = _args(tiny_models, tmp_path, use_peft=True, lora_r=4, lora_dropout=0.0, save_strategy="steps",
                 save_steps=2, max_steps=2)
    trainer = ReadTrainer(args=args, train_dataset=make_rows(8))
    trainer.train()
    trained = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    fresh = ReadTrainer(args=args, train_dataset=make_rows(8))
    fresh._load_from_checkpoint(str(tmp_path / "out" / "checkpoint-2"))
    for name, param in fresh.model.named_parameters():
        if param.requires_grad:
            assert torch.equal(param, trained[name]), name


def test_wise_ft_endpoints_are_exact_and_the_middle_is_the_mean(tiny_models):
    base = CLIPModel.from_pretrained(tiny_models[0])
    tuned = CLIPModel.from_pretrained(tiny_models[0])
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    for alpha, expected in ((0.0, base), (1.0, tuned)):
        mixed = wise_ft(base, tuned, alpha)
        for (name, a), b in zip(mixed.state_dict().items(), expected.state_dict().values()):
            assert torch.equal(a, b), (alpha, name)
    half = interpolate_state_dicts(base.state_dict(), tuned.state_dict(), 0.5)
    name = "text_projection.weight"
    torch.testing.assert_close(half[name], (base.state_dict()[name] + tuned.state_dict()[name]) / 2)
    with pytest.raises(ValueError, match="alpha"):
        interpolate_state_dicts(base.state_dict(), tuned.state_dict(), 1.5)


def test_export_with_wise_alpha_interpolates_towards_the_base(tiny_models, tmp_path):
    trainer = ReadTrainer(args=_args(tiny_models, tmp_path, wise_alpha=0.25), train_dataset=make_rows(8))
    trainer.train()
    trainer.save_model(str(tmp_path / "wise"))
    exported = CLIPModel.from_pretrained(tmp_path / "wise").state_dict()
    base = CLIPModel.from_pretrained(tiny_models[0]).state_dict()
    tuned = trainer.model.clip.state_dict()
    name = "text_projection.weight"
    torch.testing.assert_close(exported[name], 0.75 * base[name] + 0.25 * tuned[name], atol=1e-6, rtol=0)


class FakeHub:
    """Stands in for the Hub at the huggingface_hub client boundary: records what would be uploaded."""

    def __init__(self, root: Path):
        self.root, self.uploads, self.repos = root, [], []

    def create_repo(self, api, repo_id, **kwargs):
        self.repos.append((repo_id, kwargs.get("private")))
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def upload_folder(self, api, *, repo_id, folder_path, allow_patterns=None, ignore_patterns=None, **kwargs):
        target = self.root / f"upload{len(self.uploads)}"
        for path in Path(folder_path).rglob("*"):
            rel = path.relative_to(folder_path).as_posix()
            if path.is_file() and (allow_patterns is None or any(fnmatch.fnmatch(rel, p) for p in allow_patterns)):
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target / rel)
        self.uploads.append({"repo_id": repo_id, "folder": target, "token": api.token, **kwargs})
        if kwargs.get("run_as_future"):
            done = Future()
            done.set_result("commit")
            return done
        return "commit"


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    hub = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: hub.create_repo(self, repo_id, **kw))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: hub.upload_folder(self, **kw))
    return hub


def test_push_to_hub_uploads_only_a_loadable_clipmodel_with_a_card(tiny_models, tmp_path, fake_hub, caplog, capsys):
    secret = "hf_SECRETtoken1234567890abcdef"
    caplog.set_level(logging.DEBUG)
    args = _args(tiny_models, tmp_path, push_to_hub=True, hub_model_id="someone/read-tiny", hub_token=secret,
                 hub_private_repo=True, save_strategy="steps", save_steps=2, hub_strategy="every_save")
    trainer = ReadTrainer(args=args, train_dataset=make_rows(8))
    trainer.card_datasets = ["someone/world"]
    trainer.train()
    trainer.push_to_hub()

    assert fake_hub.repos[0] == ("someone/read-tiny", True)
    final = fake_hub.uploads[-1]
    assert final["repo_id"] == "someone/read-tiny" and final["token"] == secret
    folder = final["folder"]
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert "model.safetensors" in files and "README.md" in files
    assert not any(f.startswith(("checkpoint", "runs", "adapter")) or f.endswith((".pt", ".pth", ".bin"))
                   or "read_head" in f for f in files), files
    model, info = CLIPModel.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    CLIPProcessor.from_pretrained(folder)

    card = ModelCard.load(folder / "README.md")
    assert card.data.pipeline_tag == "zero-shot-image-classification"
    assert card.data.library_name == "transformers" and "read" in card.data.tags
    assert card.data.datasets == ["someone/world"]
    assert "CLIPModel.from_pretrained(\"someone/read-tiny\")" in card.text and "@inproceedings{kwon2025read" in card.text
    assert "0.1 · L_rec" in card.text and "0.5 · L_align" in card.text

    # every_save pushed the checkpoints' model files too, never their training state
    assert len(fake_hub.uploads) >= 2
    for upload in fake_hub.uploads:
        names = [p.name for p in upload["folder"].rglob("*") if p.is_file()]
        assert not any(n in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "read_head.safetensors",
                             "trainer_state.json") for n in names), names
        for path in upload["folder"].rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    out = capsys.readouterr()
    assert secret not in caplog.text and secret not in out.out and secret not in out.err


def test_checkpoint_hub_strategies_that_upload_training_state_are_refused(tiny_models, tmp_path, fake_hub):
    with pytest.raises(ValueError, match="training state"):
        ReadTrainer(args=_args(tiny_models, tmp_path, push_to_hub=True, hub_model_id="a/b", hub_strategy="checkpoint"),
                    train_dataset=make_rows(4))


def test_push_recipe_publishes_an_existing_folder(tiny_models, tmp_path, fake_hub):
    trainer = ReadTrainer(args=_args(tiny_models, tmp_path, max_steps=1), train_dataset=make_rows(4))
    trainer.train()
    trainer.save_model()
    (tmp_path / "out" / "invalid_rows.jsonl").write_text('{"row_id": 3}\n')  # must stay local
    push = load_recipe("push")

    push.main(["--folder", str(tmp_path / "out"), "--repo_id", "me/read", "--token", "hf_xyz", "--private"])
    folder = fake_hub.uploads[-1]["folder"]
    assert (folder / "model.safetensors").is_file() and not (folder / "invalid_rows.jsonl").exists()
    card = ModelCard.load(folder / "README.md")
    assert card.data.pipeline_tag == "zero-shot-image-classification"
    assert fake_hub.repos[-1] == ("me/read", True)


def test_wise_ft_recipe_exports_and_sweeps(tiny_models, tmp_path):
    recipe = load_recipe("wise_ft")

    clip_dir = tiny_models[0]
    tuned_dir = tmp_path / "tuned"
    tuned = CLIPModel.from_pretrained(clip_dir)
    with torch.no_grad():
        tuned.text_projection.weight.mul_(-1.0)
    tuned.save_pretrained(tuned_dir)
    CLIPProcessor.from_pretrained(clip_dir).save_pretrained(tuned_dir)

    recipe.main(["--base", clip_dir, "--finetuned", str(tuned_dir), "--alpha", "0", "--output", str(tmp_path / "a0")])
    assert torch.equal(CLIPModel.from_pretrained(tmp_path / "a0").text_projection.weight,
                       CLIPModel.from_pretrained(clip_dir).text_projection.weight)
    benchdata = bundled_data_root()
    results = recipe.main(["--base", clip_dir, "--finetuned", str(tuned_dir), "--alphas", "0,1",
                           "--data_root", str(benchdata), "--limit", "5", "--output", str(tmp_path / "sweep")])
    assert set(results) == {"alpha=0", "alpha=1"}
    assert (tmp_path / "sweep" / "results.json").is_file() and (tmp_path / "sweep" / "chart.png").is_file()
    with pytest.raises(UsageError, match="give exactly one of --alpha and --alphas"):
        recipe.main(["--base", clip_dir, "--finetuned", str(tuned_dir), "--output", "x"])
