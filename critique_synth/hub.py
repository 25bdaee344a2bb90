"""Publish an exported dataset folder to the Hugging Face Hub.

huggingface_hub does the work (repo creation, uploads, commits); this module adds what a
user needs around it: the token from HF_TOKEN or the login cache, retries when the network
drops, and one clear message for each way a push commonly fails.
"""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from .errors import UserError

log = logging.getLogger(__name__)


def _is_network_error(exc: BaseException) -> bool:
    """Connection failures, whichever HTTP library huggingface_hub uses (httpx or httpx2)."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return any(cls.__name__ == "TransportError" for cls in type(exc).__mro__)


def require_token(token: str | None = None) -> str:
    """The token a push will use; checked before a long job whose end is a push."""
    token = token or get_token()
    if not token:
        raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    return token


def check_repo_id(repo_id: str) -> str:
    """A dataset repo id the Hub accepts (`owner/name`), checked before any work."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise UserError(
            f"{repo_id!r} is not a Hub repo id ({str(exc).splitlines()[0]}); use owner/name"
        ) from None
    if repo_id.count("/") != 1:
        raise UserError(f"{repo_id!r} is not a Hub repo id; use owner/name, e.g. you/cft-gsm")
    return repo_id


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload CFT dataset made with critique-synth",
    token: str | None = None,
    endpoint: str | None = None,
    attempts: int = 3,
) -> str:
    """Create the dataset repo if needed and upload `folder`; returns the commit URL."""
    folder = Path(folder)
    check_repo_id(repo_id)
    if not (folder / "README.md").exists():
        raise UserError(
            f"{folder}: not an exported dataset folder (no README.md); run critique-synth export first"
        )
    api = HfApi(endpoint=endpoint, token=require_token(token))
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=8),
        retry=retry_if_exception(_is_network_error),
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                return _push(api, folder, repo_id, private, revision, commit_message)
    except HfHubHTTPError as exc:
        raise UserError(_explain(exc, repo_id)) from None
    except Exception as exc:
        if not _is_network_error(exc):
            raise
        raise UserError(
            f"cannot reach the Hugging Face Hub after {attempts} tries ({type(exc).__name__}); "
            "check the network"
        ) from None
    raise AssertionError("unreachable")


def _push(api: HfApi, folder: Path, repo_id: str, private: bool, revision: str | None, message: str) -> str:
    if not api.repo_exists(repo_id, repo_type="dataset") and api.repo_exists(repo_id, repo_type="model"):
        raise UserError(
            f"{repo_id} is a model repository; push-to-hub publishes datasets, which have their own "
            "names: choose a dataset repo id"
        )
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if revision:
        api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="dataset",
        revision=revision,
        commit_message=message,
    )
    log.info("pushed %s to %s", folder, info.commit_url)
    return str(info.commit_url)


def _explain(exc: HfHubHTTPError, repo_id: str) -> str:
    status = exc.response.status_code if exc.response is not None else None
    if isinstance(exc, RepositoryNotFoundError) or status in (401, 403):
        return (
            f"the Hub refused access to dataset {repo_id} (HTTP {status}): the token needs write access "
            "to that namespace (check HF_TOKEN or `hf auth login`)"
        )
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"push to {repo_id} failed (HTTP {status}): {first_line}"
