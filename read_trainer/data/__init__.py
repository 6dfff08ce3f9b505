"""Data: loading and validation, the collator, hard negatives, paraphrases."""
