"""push-to-hub end to end against a stand-in Hub on 127.0.0.1 (the real huggingface_hub client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import datasets
import pytest

from critique_synth.errors import UserError
from critique_synth.hub import push_to_hub

from .conftest import cli_env, invoke, run_cli
from .fakehub import READ_TOKEN, WRITE_TOKEN, FakeHub


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    fake = FakeHub().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("push") / "run"
    assert run_cli("generate", "--out", str(out), "--limit", "5").returncode == 0
    return out / "dataset"


def hub_env(hub: FakeHub, tmp_path: Path, token: str | None = WRITE_TOKEN) -> dict[str, str]:
    env = cli_env(HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "hf-home"))
    if token:
        env["HF_TOKEN"] = token
    return env


def test_push_creates_the_repo_and_uploads_the_folder(
    hub: FakeHub, dataset_dir: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "push-to-hub", str(dataset_dir), "alice/cft-demo", "--private", env=hub_env(hub, tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert "pushed:" in result.stderr
    files = hub.files("alice/cft-demo")
    local = {
        p.relative_to(dataset_dir).as_posix(): p.read_bytes() for p in dataset_dir.rglob("*") if p.is_file()
    }
    assert files == local
    assert hub.repos[("dataset", "alice/cft-demo")]["private"] is True
    mirror = tmp_path / "mirror"
    for path, data in files.items():
        (mirror / path).parent.mkdir(parents=True, exist_ok=True)
        (mirror / path).write_bytes(data)
    assert datasets.load_dataset(str(mirror))["train"].num_rows == 10


def test_a_second_push_updates_in_place_and_branches_work(
    hub: FakeHub, dataset_dir: Path, tmp_path: Path
) -> None:
    env = hub_env(hub, tmp_path)
    assert run_cli("push-to-hub", str(dataset_dir), "alice/cft-demo", env=env).returncode == 0
    again = run_cli("push-to-hub", str(dataset_dir), "alice/cft-demo", "--commit-message", "second", env=env)
    assert again.returncode == 0, again.stderr
    assert [c["header"]["summary"] for c in hub.commits][-1] == "second"
    branch = run_cli("push-to-hub", str(dataset_dir), "alice/cft-demo", "--revision", "v2", env=env)
    assert branch.returncode == 0, branch.stderr
    assert "README.md" in hub.files("alice/cft-demo", "v2")


@pytest.mark.parametrize(
    ("token", "repo", "message"),
    [
        (None, "alice/cft-demo", "no Hugging Face token"),
        (READ_TOKEN, "alice/cft-demo", "needs write access"),
        (WRITE_TOKEN, "bob/cft-demo", "needs write access"),
        (WRITE_TOKEN, "alice/my-model", "is a model repository"),
    ],
)
def test_push_errors_are_one_line_and_exit_2(
    hub: FakeHub, dataset_dir: Path, tmp_path: Path, token: str | None, repo: str, message: str
) -> None:
    result = run_cli("push-to-hub", str(dataset_dir), repo, env=hub_env(hub, tmp_path, token))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert WRITE_TOKEN not in result.stderr and READ_TOKEN not in result.stderr


def test_network_down_is_retried_then_reported(dataset_dir: Path) -> None:
    with pytest.raises(UserError, match="cannot reach the Hugging Face Hub after 2 tries"):
        push_to_hub(dataset_dir, "alice/x", token=WRITE_TOKEN, endpoint="http://127.0.0.1:9", attempts=2)


def test_generate_can_push_at_the_end(hub: FakeHub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(
        "generate",
        "--out",
        str(out),
        "--limit",
        "3",
        "--push-to-hub",
        "alice/from-generate",
        env=hub_env(hub, tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "README.md" in hub.files("alice/from-generate")


def test_not_an_export_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not an exported dataset folder"):
        push_to_hub(tmp_path, "alice/x", token=WRITE_TOKEN)


@pytest.mark.parametrize("repo_id", ["bad id!!", "me/x/y", "me/x--y"])
def test_a_bad_repo_id_is_one_line_before_any_work(tmp_path: Path, repo_id: str) -> None:
    out = tmp_path / "run"
    result = invoke(
        "generate", "--out", out, "--limit", "2", "--push-to-hub", repo_id, env=cli_env(HF_TOKEN="hf_x")
    )
    assert result.exit_code == 2 and "is not a Hub repo id" in result.stderr
    assert not (out / "critiques.jsonl").exists()  # refused before the job, not after it
