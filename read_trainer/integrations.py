"""``report_to`` integrations: each one's package must be importable before the run starts.

transformers only notices a missing tracker when it builds the Trainer, after the data
scan and the model load; checked first, a missing package is one line with its install
command instead.
"""

from __future__ import annotations

import importlib.util

from .cli import UsageError

# integration name -> (importable modules, any one suffices; the pip line that installs one)
INTEGRATION_PACKAGES = {
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install 'read-trainer[tensorboard]'"),
    "wandb": (("wandb",), "pip install 'read-trainer[wandb]'"),
    "mlflow": (("mlflow",), "pip install mlflow"),
    "comet_ml": (("comet_ml",), "pip install comet_ml"),
    "clearml": (("clearml",), "pip install clearml"),
    "trackio": (("trackio",), "pip install trackio"),
}


def check_report_to(report_to) -> None:
    """Raise ``UsageError`` naming the first requested integration whose package is missing."""
    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    for name in names:
        if name not in INTEGRATION_PACKAGES:
            continue  # "none", "all" (transformers picks the installed ones), or one transformers checks itself
        modules, install = INTEGRATION_PACKAGES[name]
        if not any(importlib.util.find_spec(m) is not None for m in modules):
            raise UsageError(f"report_to={name!r} needs the {modules[0]} package, which is not installed: "
                             f"{install} (or set --report_to none)")
