#!/bin/bash
# READ on several machines under SLURM with torchrun: one task per node, one process per GPU.
#   sbatch recipes/slurm_multi_node.sh
# Streaming: each process (and DataLoader worker) reads its own shards; write at least
# (nodes x GPUs per node x dataloader_num_workers) shards, a multiple of it, with
# recipes/make_shards.py. The checkpoints hold every process's stream position
# (stream_state_<rank>.pt): resume with the same number of nodes, GPUs and workers.
# Paraphrases travel in the shards (make_shards.py --paraphrase_file): hence --paraphrase_file none.
#SBATCH --job-name=read-clip
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
#SBATCH --output=%x-%j.out
set -euo pipefail

GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MAIN_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MAIN_PORT=${MAIN_PORT:-29500}
OUTPUT_DIR=${OUTPUT_DIR:-read_clip_multi_node}

# The global batch (contrastive and alignment losses see all of it) is
# nodes x GPUs x per_device_train_batch_size = 2 x 8 x 16 = 256, the reference batch.
srun torchrun \
    --nnodes "$SLURM_NNODES" --nproc_per_node "$GPUS_PER_NODE" \
    --rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d --rdzv_endpoint "$MAIN_ADDR:$MAIN_PORT" \
    recipes/run_read.py --config recipes/read_clip_vit_b32.yaml \
    --streaming true --train_file "${SHARDS:-shards/train-*.tar}" --paraphrase_file none --shuffle_buffer_size 1000 \
    --max_steps "${MAX_STEPS:-20000}" --per_device_train_batch_size 16 --dataloader_num_workers 4 \
    --save_steps 1000 --output_dir "$OUTPUT_DIR" \
    ${RESUME:+--resume_from_checkpoint "$RESUME"}
