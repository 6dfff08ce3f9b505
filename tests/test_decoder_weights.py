"""The frozen decoder is loaded from only its own tensors: equal to what from_pretrained gives,
for single-file, sharded, .bin and hub-cached checkpoints, and no encoder tensor is ever read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import safetensors
import torch
from huggingface_hub import constants
from transformers import T5ForConditionalGeneration

from read_trainer import decoder_weights
from read_trainer.modeling import load_frozen_decoder, load_t5


@pytest.fixture(scope="module")
def stock(tiny_models):
    return load_t5(tiny_models[1])


def _assert_same_as_stock(stock, decoder, lm_head, dtype=torch.float32):
    expected = {k: v.to(dtype) for k, v in stock.decoder.state_dict().items()}
    got = decoder.state_dict()
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    assert torch.equal(lm_head.weight, stock.lm_head.weight.to(dtype))
    assert not any(p.requires_grad for p in [*decoder.parameters(), *lm_head.parameters()])


@pytest.fixture
def read_keys(monkeypatch):
    """Every tensor name read from a safetensors file."""
    keys = []
    original = safetensors.safe_open

    class Recording:
        def __init__(self, *args, **kwargs):
            self.inner = original(*args, **kwargs)

        def __enter__(self):
            self.inner.__enter__()
            return self

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

        def keys(self):
            return self.inner.keys()

        def get_slice(self, key):  # metadata (dtype) only
            return self.inner.get_slice(key)

        def get_tensor(self, key):
            keys.append(key)
            return self.inner.get_tensor(key)

    monkeypatch.setattr(safetensors, "safe_open", Recording)
    return keys


def test_single_file_reads_no_encoder_tensor_and_casts_as_it_reads(tiny_models, stock, read_keys):
    decoder, lm_head, config = load_frozen_decoder(tiny_models[1], dtype=torch.bfloat16)
    assert read_keys and not [k for k in read_keys if k.startswith("encoder.")]
    assert {"shared.weight", "lm_head.weight"} <= set(read_keys)
    read_keys.clear()
    load_frozen_decoder(tiny_models[1])  # nothing to cast: the other path
    assert read_keys and not [k for k in read_keys if k.startswith("encoder.")]
    _assert_same_as_stock(stock, decoder, lm_head, torch.bfloat16)
    assert decoder.embed_tokens.weight.dtype == torch.bfloat16
    assert config.d_model == stock.config.d_model and decoder.config.is_decoder
    # The stock forward of the loaded stack is the stock model's decoder forward.
    ids = torch.tensor([[0, 5, 7, 9]])
    memory = torch.randn(1, 1, config.d_model)
    fp32, head, _ = load_frozen_decoder(tiny_models[1])
    torch.testing.assert_close(fp32(input_ids=ids, encoder_hidden_states=memory).last_hidden_state,
                               stock.decoder(input_ids=ids, encoder_hidden_states=memory).last_hidden_state)


def _sharded(tiny_models, folder: Path) -> Path:
    model = T5ForConditionalGeneration.from_pretrained(tiny_models[1])
    model.save_pretrained(folder, max_shard_size="40KB")
    for name in ("spiece.model", "tokenizer_config.json", "special_tokens_map.json"):
        if (Path(tiny_models[1]) / name).exists():
            shutil.copy(Path(tiny_models[1]) / name, folder / name)
    return folder


def _encoder_only_shards(folder: Path) -> set[str]:
    weight_map = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    shards = {}
    for key, shard in weight_map.items():
        shards.setdefault(shard, set()).add(key.split(".")[0])
    return {shard for shard, parts in shards.items() if parts == {"encoder"}}


def test_sharded_checkpoint_opens_only_the_shards_holding_decoder_tensors(tiny_models, stock, tmp_path):
    folder = _sharded(tiny_models, tmp_path / "sharded")
    encoder_only = _encoder_only_shards(folder)
    assert encoder_only  # the test needs a shard the decoder does not use
    for shard in encoder_only:  # gone: a load that touched them would fail
        (folder / shard).unlink()
    decoder, lm_head, _ = load_frozen_decoder(str(folder))
    _assert_same_as_stock(stock, decoder, lm_head)


def test_hub_id_from_the_cache_fetches_no_encoder_shard(tiny_models, stock, tmp_path, monkeypatch):
    """A hub id resolves through the Hub cache (offline here); encoder-only shards need not be there."""
    source = _sharded(tiny_models, tmp_path / "sharded")
    encoder_only = _encoder_only_shards(source)
    revision = "0" * 40
    repo = tmp_path / "hub" / "models--someone--tiny-t5"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for file in source.iterdir():
        if file.name not in encoder_only:
            shutil.copy(file, snapshot / file.name)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    decoder, lm_head, _ = load_frozen_decoder("someone/tiny-t5", local_files_only=True)
    _assert_same_as_stock(stock, decoder, lm_head)


def test_bin_checkpoint_loads_with_weights_only(tiny_models, stock, tmp_path, monkeypatch):
    folder = tmp_path / "bin"
    folder.mkdir()
    shutil.copy(Path(tiny_models[1]) / "config.json", folder / "config.json")
    torch.save({k: v.clone() for k, v in stock.state_dict().items()}, folder / "pytorch_model.bin")
    loads = []
    original = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: loads.append(kw) or original(*a, **kw))
    decoder, lm_head, _ = load_frozen_decoder(str(folder))
    _assert_same_as_stock(stock, decoder, lm_head)
    assert loads and all(kw.get("weights_only") is True for kw in loads)  # never unpickles arbitrary objects


def test_a_folder_without_weights_is_one_clear_error(tmp_path, tiny_models):
    folder = tmp_path / "config-only"
    folder.mkdir()
    shutil.copy(Path(tiny_models[1]) / "config.json", folder / "config.json")
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        decoder_weights.load_decoder(str(folder))
