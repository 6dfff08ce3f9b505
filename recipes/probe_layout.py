"""Does a CLIP's image embedding know where things are? A linear probe on the synthetic world.

    python recipes/probe_layout.py --models read_trainer/demo/base_checkpoints/clip outputs/demo/read-clip

For every 2-object scene the label is "is the first object (by colour, then shape) left of
the second?" (about half are). A logistic-regression probe is fitted on train scenes and
scored on test scenes, twice per model: on the projected, pooled image embedding (what
CLIP compares with text) and on the vision tower's flattened patch tokens (what the tower
saw before pooling). A probe near 50% on the embedding but well above it on the patches
says the tower sees the layout but its pooled output does not carry it in a form one
linear read-out finds (CLIP's score is linear in the image embedding for each caption,
so this probe is stricter than a relation test: it asks for one direction for every
colour-shape pair).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import CLIPModel, CLIPProcessor  # noqa: E402

from read_trainer.demo.dataset import build_world  # noqa: E402


def layout_features(model_path: str, split, limit: int, batch_size: int = 256):
    """(pooled embeddings, patch tokens, labels) for the 2-object scenes among the first ``limit`` rows."""
    model = CLIPModel.from_pretrained(model_path).eval()
    processor = CLIPProcessor.from_pretrained(model_path)
    rows = split.select(range(min(limit, len(split))))
    pooled, patches, labels = [], [], []
    for start in range(0, len(rows), batch_size):
        batch = rows.select(range(start, min(len(rows), start + batch_size)))
        scenes = [json.loads(s)["objects"] for s in batch["scene"]]
        keep = [i for i, objects in enumerate(scenes) if len(objects) == 2]
        if not keep:
            continue
        with torch.no_grad():
            pixels = processor.image_processor(images=[batch[i]["image"] for i in keep],
                                               return_tensors="pt")["pixel_values"]
            out = model.vision_model(pixel_values=pixels)
            pooled.append(F.normalize(model.visual_projection(out.pooler_output), dim=-1))
            patches.append(out.last_hidden_state[:, 1:].flatten(1))
        for i in keep:
            first, second = sorted(scenes[i], key=lambda o: (o["colour"], o["shape"]))
            labels.append(float(first["x"] < second["x"]))
    return torch.cat(pooled), torch.cat(patches), torch.tensor(labels)


def probe_accuracy(x_train, y_train, x_test, y_test, l2: float = 1e-3) -> float:
    """L2-regularised logistic regression (standardised features, L-BFGS); test accuracy."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    w = torch.zeros(x_train.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=300)

    def closure():
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x_train @ w + b, y_train) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return ((x_test @ w + b > 0).float() == y_test).float().mean().item()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="CLIPModel folders to probe")
    parser.add_argument("--cache", default=".cache", help="the demo's cache folder (the world is built there if absent)")
    parser.add_argument("--world_seed", type=int, default=0)
    parser.add_argument("--n_train", type=int, default=4000)
    parser.add_argument("--n_test", type=int, default=500)
    parser.add_argument("--n_novel", type=int, default=500)
    parser.add_argument("--image_size", type=int, default=96)
    parser.add_argument("--train_rows", type=int, default=3000, help="train rows to fit on (2-object scenes among them)")
    args = parser.parse_args(argv)

    world = build_world(args.world_seed, args.n_train, args.n_test, args.n_novel, args.image_size,
                        cache_dir=os.path.join(args.cache, "world"))
    results = {}
    for path in args.models:
        p_train, t_train, y_train = layout_features(path, world["train"], args.train_rows)
        p_test, t_test, y_test = layout_features(path, world["test"], len(world["test"]))
        results[path] = {
            "train_scenes": len(y_train), "test_scenes": len(y_test), "positive_rate": y_test.mean().item(),
            "embedding_probe": probe_accuracy(p_train, y_train, p_test, y_test),
            "patch_probe": probe_accuracy(t_train, y_train, t_test, y_test),
        }
        r = results[path]
        print(f"{path}: left/right probe on the image embedding {100 * r['embedding_probe']:.1f}%, "
              f"on patch tokens {100 * r['patch_probe']:.1f}% ({r['train_scenes']} train / {r['test_scenes']} "
              f"test scenes, {100 * r['positive_rate']:.0f}% positive)", flush=True)
    return results


if __name__ == "__main__":
    main()
