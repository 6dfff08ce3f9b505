"""Compositional benchmarks: loaders, batched scoring, the training callback."""
