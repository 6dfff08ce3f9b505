"""The offline demo: a synthetic world, tiny stand-in models, and READ run end to end on them.

No pretrained CLIP or T5 can be downloaded offline, so the demo builds its own: a procedural
image-caption world where a bag-of-words text encoder measurably fails, "pretrained" base
models trained on it, and SugarCrepe-style benchmarks over it. It is a client of the library
(it trains with ``ReadTrainer`` and scores with the evaluation suite); the library never
imports it.

    scenes.py       scenes of coloured shapes on a 3x3 grid, rendered to images
    captions.py     caption templates, their meaning, the truth checker, paraphrases, false captions
    dataset.py      the world's train / test / novel splits as ``datasets``, cached
    benchmark.py    the world as SugarCrepe-style and SugarCrepe++-style benchmarks
    tiny_models.py  tiny CLIP and T5 v1.1-style checkpoints and tokenizers (also used by the tests)
    base_models.py  the base CLIP and T5 pretrained on the world, cached
    shipped_base.py the base CLIP and T5 shipped in base_checkpoints/, checked by SHA-256
    cache.py        build-once cache folders
    pipeline.py     READ fine-tuning on the world (negatives kept to the world, training rows)
    report.py       scoring, tables, checks and the chart
"""
