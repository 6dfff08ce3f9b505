"""The accelerate launch configs under recipes/accelerate/ are what `accelerate launch` accepts.

Each YAML goes through accelerate's own pipeline, short of starting processes: the config
file class (unknown top-level keys are an error there), the launcher's argument handling
(``_validate_launch_command``), the environment the launcher would give the training
processes, and the FSDP / DeepSpeed plugin those processes would build from it. Keys
nested under ``fsdp_config`` / ``deepspeed_config`` are checked against the launcher's
options too, because accelerate copies unknown nested keys silently.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env, prepare_simple_launcher_cmd_env

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "recipes" / "accelerate"
EXPECTED = {
    "single_gpu.yaml": DistributedType.NO,
    "multi_gpu_ddp.yaml": DistributedType.MULTI_GPU,
    "multi_node.yaml": DistributedType.MULTI_GPU,
    "fsdp.yaml": DistributedType.FSDP,
    "deepspeed_zero2.yaml": DistributedType.DEEPSPEED,
}
TRAINING = ["recipes/run_read.py", "--config", "recipes/read_clip_vit_b32.yaml"]


def test_the_launch_configs_exist():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


def _launch_env(path: Path, extra: list[str] = ()) -> tuple:
    """What `accelerate launch --config_file path ...` would hand the training processes."""
    parser = launch_command_parser()
    args = parser.parse_args(["--config_file", str(path), *extra, *TRAINING])
    args, defaults, mixed_precision_from_config = _validate_launch_command(args)
    dests = {action.dest for action in parser._actions}
    if args.use_deepspeed:
        # As accelerate's launch_command does before calling the DeepSpeed launcher.
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mixed_precision_from_config else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        _, env = prepare_deepspeed_cmd_env(args)
    elif args.multi_gpu or args.use_fsdp:
        env = prepare_multi_gpu_env(args)
    else:
        _, env = prepare_simple_launcher_cmd_env(args)
    return args, defaults, env, dests


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accelerate_accepts_the_config(name):
    path = CONFIGS / name
    config = ClusterConfig.from_yaml_file(str(path))  # unknown top-level keys raise here
    assert config.distributed_type == EXPECTED[name]
    assert config.mixed_precision == "bf16"  # matches the reference recipe's bf16: true

    args, defaults, env, dests = _launch_env(path)
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    raw = yaml.safe_load(path.read_text())
    for section, prefix in (("fsdp_config", "fsdp_"), ("deepspeed_config", "")):
        for key in raw.get(section) or {}:
            assert prefix + key.removeprefix(prefix) in dests, f"{name}: {section}.{key} is not an accelerate option"

    if EXPECTED[name] == DistributedType.NO:
        assert args.num_processes == 1 and not (args.multi_gpu or args.use_fsdp or args.use_deepspeed)
    else:
        assert args.num_processes > 1
        # --num_processes on the command line wins over the file (docs/launch.md's launch lines use it).
        overridden, *_ = _launch_env(path, ["--num_processes", "4"])
        assert overridden.num_processes == 4


def test_fsdp_config_builds_the_plugin_the_training_processes_use():
    from read_trainer.modeling import ReadModel

    _, _, env, _ = _launch_env(CONFIGS / "fsdp.yaml")
    with mock.patch.dict(os.environ, env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"  # the CLIPModel export needs full weights
    assert not plugin.activation_checkpointing and not plugin.cpu_ram_efficient_loading
    # The wrapped block classes exist in a ReadModel (accelerate looks them up by name).
    names = set(plugin.transformer_cls_names_to_wrap)
    assert names == {"CLIPEncoderLayer", "T5Block"}
    from transformers import CLIPConfig, CLIPModel, T5Config, T5ForConditionalGeneration

    tiny = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    clip = CLIPModel(CLIPConfig(text_config=tiny, vision_config=dict(tiny, image_size=16, patch_size=8),
                                projection_dim=8))
    t5 = T5ForConditionalGeneration(T5Config(vocab_size=32, d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2))
    model = ReadModel(clip, t5.decoder, t5.lm_head, t5.config)
    assert names <= {type(m).__name__ for m in model.modules()}


def _deepspeed_plugin() -> DeepSpeedPlugin:
    _, _, env, _ = _launch_env(CONFIGS / "deepspeed_zero2.yaml")
    with mock.patch.dict(os.environ, env):
        return DeepSpeedPlugin()


def test_deepspeed_config_builds_a_zero2_plugin():
    plugin = _deepspeed_plugin()
    assert plugin.zero_stage == 2
    config = plugin.deepspeed_config
    assert config["zero_optimization"]["offload_optimizer"]["device"] == "none"
    # Clipping and accumulation are "auto": Trainer fills them from the training config.
    assert config["gradient_clipping"] == "auto" and config["gradient_accumulation_steps"] == "auto"


def test_multi_node_config_takes_each_machines_rank_and_the_main_address():
    args, *_ = _launch_env(CONFIGS / "multi_node.yaml", ["--machine_rank", "1", "--main_process_ip", "10.0.0.1"])
    assert args.multi_gpu and args.num_machines == 2 and args.num_processes == 16
    assert args.machine_rank == 1 and args.main_process_ip == "10.0.0.1" and args.main_process_port == 29500
    # What torchrun gets on that machine: 2 nodes, this one rank 1, 8 processes on it.
    assert (int(args.nnodes), args.node_rank, int(args.nproc_per_node)) == (2, 1, 8)
    assert args.rdzv_endpoint == "10.0.0.1:29500"
