"""Find every model and dataset id a run names before anything is loaded.

An id is a local folder, a repository in the local Hugging Face cache, or a repository on
the Hub. Asked of the Hub with a short timeout, an unreachable Hub or an unknown id
becomes one ``UsageError`` line that names the id and what to do, in seconds, instead
of minutes of retries ending in a message about local directories.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .cli import UsageError

logger = logging.getLogger(__name__)

HUB_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Resolved:
    name: str  # the id as the user gave it
    kind: str  # "model" or "dataset"
    source: str  # "folder", "cache" or "hub"


def _what_to_do(repo_id: str, kind: str, offline: bool) -> str:
    flag = " --repo-type dataset" if kind == "dataset" else ""
    saved = "save_to_disk" if kind == "dataset" else "save_pretrained"
    advice = (f"on a connected machine run `hf download {repo_id}{flag}` and copy the Hugging Face cache "
              f"(~/.cache/huggingface) here, or pass a local folder saved with {saved}")
    return advice if offline else advice + "; HF_HUB_OFFLINE=1 then keeps every load on the local cache"


def in_local_cache(repo_id: str, kind: str) -> bool:
    """Whether a snapshot of ``repo_id`` is in the Hub cache (datasets: also in the datasets cache)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        snapshot_download(repo_id, repo_type=kind, local_files_only=True)
        return True
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError, OSError):
        pass
    if kind == "dataset":
        import datasets

        # datasets keeps prepared copies as <cache>/<namespace>___<name>.
        folder = Path(datasets.config.HF_DATASETS_CACHE) / repo_id.replace("/", "___")
        return folder.is_dir()
    return False


def resolve_id(repo_id: str, kind: str = "model", timeout: float = HUB_TIMEOUT_S) -> Resolved:
    """Where ``repo_id`` (a ``kind`` = "model" or "dataset") will be loaded from; ``UsageError`` if nowhere."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, HFValidationError, RepositoryNotFoundError

    if Path(repo_id).expanduser().exists():
        return Resolved(repo_id, kind, "folder")
    if repo_id.startswith((".", "/", "~")) or repo_id.count("/") > 1:
        raise UsageError(f"{kind} folder {repo_id!r} does not exist")
    cached = in_local_cache(repo_id, kind)
    if constants.HF_HUB_OFFLINE:
        if cached:
            return Resolved(repo_id, kind, "cache")
        raise UsageError(f"{kind} {repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids "
                         f"the Hub: {_what_to_do(repo_id, kind, True)}")
    try:
        HfApi().repo_info(repo_id, repo_type=kind, timeout=timeout)
        return Resolved(repo_id, kind, "hub")
    except GatedRepoError:  # a subclass of RepositoryNotFoundError: caught first
        if cached:
            return Resolved(repo_id, kind, "cache")
        raise UsageError(f"{kind} {repo_id!r} is gated: accept its terms on the Hub, then `hf auth login`") from None
    except (RepositoryNotFoundError, HFValidationError) as error:
        if cached:
            return Resolved(repo_id, kind, "cache")
        reason = "is not a valid id" if isinstance(error, HFValidationError) else "was not found on the Hub"
        raise UsageError(f"{kind} {repo_id!r} {reason} and is not a local folder (a private repository "
                         f"needs `hf auth login`)") from None
    except HfHubHTTPError as error:
        failure = f"the Hub answered {error.response.status_code if error.response is not None else 'an error'}"
    except Exception as error:  # noqa: BLE001 - connection refused, DNS failure, timeout, proxy errors
        failure = f"the Hub ({constants.ENDPOINT}) could not be reached ({type(error).__name__})"
    if cached:
        # Use the cached copy, and keep the loaders from waiting on the unreachable Hub again.
        logger.warning("%s; using the cached copy of %s %r and working offline", failure, kind, repo_id)
        go_offline()
        return Resolved(repo_id, kind, "cache")
    raise UsageError(f"{kind} {repo_id!r} is not a local folder nor in the local cache, and {failure}: "
                     f"{_what_to_do(repo_id, kind, False)}")


def go_offline() -> None:
    """Offline mode for the rest of the process (huggingface_hub, transformers and datasets read these flags)."""
    import os

    from huggingface_hub import constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    try:
        import datasets

        datasets.config.HF_HUB_OFFLINE = True
    except (ImportError, AttributeError):
        pass


def resolve_run_ids(config, data_args) -> list[Resolved]:
    """Resolve every id a ``run_read.py`` run will load: the CLIP model, the decoder, the dataset."""
    wanted = [(config.model_name_or_path, "model")]
    if config.uses_decoder:
        wanted.append((config.decoder_name_or_path, "model"))
    if data_args.dataset_name is not None and data_args.train_file is None:
        wanted.append((data_args.dataset_name, "dataset"))
    resolved = [resolve_id(name, kind) for name, kind in wanted]
    for r in resolved:
        logger.info("%s %r: from the %s", r.kind, r.name, {"folder": "local folder", "cache": "local cache",
                                                          "hub": "Hub"}[r.source])
    return resolved
