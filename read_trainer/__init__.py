"""read-trainer: READ fine-tuning for CLIP on the Hugging Face Trainer."""

__version__ = "0.1.0"
