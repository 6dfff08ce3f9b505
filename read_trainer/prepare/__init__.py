"""Getting the paper's data onto disk: a manifest of every source, verified downloads, safe extraction,
and the folders the training recipe and the evaluation suite read.

``manifest.json`` lists each file with its URL or hub location, size, published checksum, licence and
official source; ``fetch`` downloads and verifies; ``archives`` extracts; ``training``, ``paraphrase_files``
and ``benchmarks`` lay out what ``recipes/read_clip_vit_b32.yaml`` and ``evaluation/suite.py`` read.
``recipes/prepare_data.py`` is the command line. Nothing downloaded is ever executed.
"""
