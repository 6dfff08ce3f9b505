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
from .paths import missing_path_message, relative_path_hint

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
    if looks_like_a_path(repo_id):
        raise UsageError(missing_path_message(f"{kind} folder", repo_id))
    cached = in_local_cache(repo_id, kind)
    # A name such as my_photoz or data/my_photoz may be a mistyped folder as well as a Hub id: say both,
    # the folder first for a name without a namespace (few Hub ids have none).
    hint = relative_path_hint(repo_id)
    if "/" in repo_id:
        subject, also = f"{kind} {repo_id!r}", f" and is not a local folder ({hint})"
    else:
        subject, also = f"{kind} {repo_id!r}: no local folder {repo_id!r} exists ({hint}); as a Hub id it", ""
    if constants.HF_HUB_OFFLINE:
        if cached:
            return Resolved(repo_id, kind, "cache")
        raise UsageError(f"{subject} is not in the local Hugging Face cache{also}, and HF_HUB_OFFLINE=1 forbids "
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
        reason = "is not a valid Hub id" if isinstance(error, HFValidationError) else "was not found on the Hub"
        raise UsageError(f"{subject} {reason}{also}; a private repository needs `hf auth login`") from None
    except HfHubHTTPError as error:
        failure = f"the Hub answered {error.response.status_code if error.response is not None else 'an error'}"
    except Exception as error:  # noqa: BLE001 - connection refused, DNS failure, timeout, proxy errors
        failure = f"the Hub ({constants.ENDPOINT}) could not be reached ({type(error).__name__})"
    if cached:
        # Use the cached copy, and keep the loaders from waiting on the unreachable Hub again.
        logger.warning("%s; using the cached copy of %s %r and working offline", failure, kind, repo_id)
        go_offline()
        return Resolved(repo_id, kind, "cache")
    raise UsageError(f"{subject} is not in the local cache{also}, and {failure}: {_what_to_do(repo_id, kind, False)}")


def looks_like_a_path(name: str) -> bool:
    """Whether ``name`` can only be a local path: it cannot be a Hub id (``name`` or ``namespace/name``)."""
    import re

    return (name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
            or re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", name) is None
            or Path(name).suffix.lower() in (".json", ".jsonl", ".csv", ".parquet", ".tar", ".yaml", ".txt"))


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



PUSH_LATER = ("train without --push_to_hub and publish the export later with `python recipes/push.py --folder "
              "<output_dir> --repo_id <user>/<name>`")


def check_hub_for_push(token: str | None = None, timeout: float = HUB_TIMEOUT_S, what: str = "--push_to_hub",
                       later: str = PUSH_LATER) -> str:
    """Before an upload: the Hub answers and accepts the token; returns the user name.

    Offline, without a token, with a refused token or an unreachable Hub, the upload would
    fail at the end (for ``--push_to_hub``, after the whole run): ``UsageError`` now, naming
    ``what`` needs the Hub and what to do instead (``later``).
    """
    from huggingface_hub import constants, get_token
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    if constants.HF_HUB_OFFLINE:
        raise UsageError(f"{what} needs the Hub, but HF_HUB_OFFLINE=1: {later}")
    token = token or get_token()
    if not token:
        raise UsageError(f"{what} needs a Hub token: run `hf auth login`, set HF_TOKEN or pass the token; or {later}")
    try:
        response = get_session().get(f"{constants.ENDPOINT}/api/whoami-v2", headers=build_hf_headers(token=token),
                                     timeout=timeout)
        hf_raise_for_status(response)
        return response.json().get("name", "")
    except Exception as error:  # noqa: BLE001 - refused token, connection refused, DNS failure, timeout
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status == 401:
            raise UsageError(f"{what}: the Hub refused the token (401): run `hf auth login` with a write token") \
                from None
        failure = f"answered {status}" if status else f"could not be reached ({type(error).__name__})"
        raise UsageError(f"{what}: the Hub ({constants.ENDPOINT}) {failure}: {later}") from None
