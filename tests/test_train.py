"""The bundled trainer and evaluator, on a tiny model built here, on the CPU."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

import critique_synth
from critique_synth.cli import app
from critique_synth.trainer.data import IGNORE, DataReport, Encoder, collate
from critique_synth.trainer.loss import TargetLoss
from critique_synth.trainer.tiny import make_model, make_tokenizer

from .conftest import cli_env, read_jsonl


def invoke(*args: str, code: int = 0) -> Any:
    """The CLI in this process: the trainer's code path without a new interpreter's imports."""
    result = CliRunner().invoke(app, list(args), env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == code, f"{result.output}\n{result.exception!r}"
    return result


def train_args(data: Path, model: Path, out: Path, steps: int, accum: int = 2, *extra: str) -> list[str]:
    """Arguments of a short `train` run on the tiny model: batch 2, lr 1e-3."""
    return [
        "train",
        "--data",
        str(data),
        "--model",
        str(model),
        "--out",
        str(out),
        "--max-steps",
        str(steps),
        "--batch-size",
        "2",
        "--grad-accum",
        str(accum),
        "--lr",
        "1e-3",
        *extra,
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "run"
    result = critique_synth.generate({"limit": 12}, out=out)
    assert result.dataset is not None
    return result.dataset.path


def test_labels_mask_the_prompt_and_padding() -> None:
    tokenizer = make_tokenizer()
    encoder = Encoder(tokenizer, cutoff=512)
    report = DataReport()
    short = encoder.encode("What is 2 + 2?", "4. Conclusion: right [END]", report)
    long = encoder.encode("Question: " + "How many apples? " * 5, "Conclusion: wrong [END]", report)
    assert short is not None and long is not None
    batch = collate([short, long], tokenizer.pad_token_id)
    for row, example in enumerate([short, long]):
        ids, labels, mask = batch["input_ids"][row], batch["labels"][row], batch["attention_mask"][row]
        n, p = len(example), example.prompt_len
        assert (labels[:p] == IGNORE).all()
        assert torch.equal(labels[p:n], ids[p:n])
        assert (labels[n:] == IGNORE).all() and (mask[n:] == 0).all() and (mask[:n] == 1).all()
    target = tokenizer.decode(short.input_ids[short.prompt_len :])
    assert target == "4. Conclusion: right [END]<|im_end|>\n"  # the end-of-turn token is a target
    prompt = tokenizer.decode(short.input_ids[: short.prompt_len])
    assert prompt.endswith("<|im_start|>assistant\n") and "What is 2 + 2?" in prompt


def test_a_long_prompt_is_cut_and_the_target_survives_whole() -> None:
    tokenizer = make_tokenizer()
    report = DataReport()
    target = "The first error is in step 2. Conclusion: wrong [END]"
    example = Encoder(tokenizer, cutoff=96).encode("Question: " + "12 * 8 = 96 " * 200, target, report)
    assert example is not None and len(example) == 96
    assert report.prompts_cut == 1
    text = tokenizer.decode(example.input_ids)
    assert text.startswith("<|im_start|>user\nQuestion:")
    assert text.endswith(f"<|im_start|>assistant\n{target}<|im_end|>\n")
    too_long = Encoder(tokenizer, cutoff=24).encode("q", target * 4, report)
    assert too_long is None and report.dropped_too_long == 1


def test_plain_fallback_without_a_chat_template() -> None:
    tokenizer = make_tokenizer(chat_template=False)
    example = Encoder(tokenizer, cutoff=256).encode("What is 2 + 2?", "4", DataReport())
    assert example is not None
    assert tokenizer.decode(example.input_ids[example.prompt_len :]) == "4<|im_end|>"


def test_loss_falls_on_a_fixed_batch(tiny: Path) -> None:
    from transformers import AutoModelForCausalLM

    tokenizer = make_tokenizer()
    encoder = Encoder(tokenizer, cutoff=256)
    examples = [
        encoder.encode(f"What is {i} + {i}?", f"{2 * i}. Conclusion: right [END]", DataReport())
        for i in range(4)
    ]
    batch = collate([e for e in examples if e], tokenizer.pad_token_id)
    loss_fn = TargetLoss(AutoModelForCausalLM.from_pretrained(tiny))
    optimizer = torch.optim.AdamW(loss_fn.parameters(), lr=1e-2)
    targets = int((batch["labels"][:, 1:] != IGNORE).sum())
    losses = []
    for _ in range(12):
        loss = loss_fn(**batch) / targets
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


# (model type, config attributes): each post-processes the output layer's logits in its forward.
POSTPROCESSED = [
    ("gemma2", {"final_logit_softcapping": 1.0, "head_dim": 8}),
    ("cohere", {"logit_scale": 4.0}),
    ("granite", {"logits_scaling": 0.25}),
    ("hyperclovax", {"logits_scaling": 4.0}),  # multiplies where Granite divides: full forward
]


@pytest.mark.parametrize(("model_type", "extra"), POSTPROCESSED, ids=[m for m, _ in POSTPROCESSED])
def test_target_loss_equals_the_models_own_logits(model_type: str, extra: dict[str, float]) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    sizes = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = AutoConfig.for_model(
        model_type,
        vocab_size=64,
        num_key_value_heads=1,
        initializer_range=0.5,
        pad_token_id=0,
        **sizes,
        **extra,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    input_ids = torch.randint(3, 64, (2, 12))
    attention_mask = torch.ones_like(input_ids)
    input_ids[1, 9:], attention_mask[1, 9:] = 0, 0
    labels = input_ids.clone()
    labels[:, :5], labels[1, 9:] = IGNORE, IGNORE
    targets = labels[:, 1:]
    mask = targets != IGNORE

    def cross_entropy(logits: torch.Tensor) -> float:
        return float(torch.nn.functional.cross_entropy(logits.float(), targets[mask], reduction="sum"))

    with torch.no_grad():
        reference = cross_entropy(
            model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][mask]
        )
        hidden = model.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        head_only = cross_entropy(model.get_output_embeddings()(hidden[:, :-1][mask]))
        loss_fn = TargetLoss(model)
        loss = float(loss_fn(input_ids, attention_mask, labels))
    assert head_only != pytest.approx(reference, rel=1e-2)  # the post-processing matters here
    assert loss == pytest.approx(reference, rel=1e-5)
    assert loss_fn.labelled_only is (model_type != "hyperclovax")  # logits only at targets where known


def train_rows(out: Path) -> list[dict[str, Any]]:
    rows = read_jsonl(out / "metrics.jsonl")
    assert all(r["tokens"] > 0 and 0 <= r["padding_fraction"] < 1 for r in rows)
    return rows


def test_train_cli_end_to_end_both_objectives(
    tiny: Path, exported: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from transformers import AutoModelForCausalLM

    caplog.set_level(logging.INFO)
    out = tmp_path / "out"
    for objective in ("cft", "sft"):  # the second run goes to the same folder: a fresh start
        result = invoke(*train_args(exported, tiny, out, 3, 2, "--objective", objective, "--cutoff", "1024"))
        assert "trained 3 steps" in result.output
        rows = train_rows(out)
        assert [r["step"] for r in rows] == [1, 2, 3]  # this run's rows only
        # the rate each step used: cosine from 1e-3 over 3 steps, no warmup (int(0.1 * 3) = 0)
        assert [r["lr"] for r in rows] == pytest.approx([1e-3, 7.5e-4, 2.5e-4])
        AutoModelForCausalLM.from_pretrained(out)
    assert "lr 0.001 | epochs 1 | cosine schedule, warmup ratio 0.1 | cutoff 1024" in caplog.text


def test_resume_gives_the_same_next_step_loss_and_no_duplicate_metrics(
    tiny: Path, exported: Path, tmp_path: Path
) -> None:
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    invoke(*train_args(exported, tiny, full, 4, 2, "--save-every", "2"))
    assert (full / "checkpoints" / "step-0000002" / "tokenizer_config.json").exists()
    # as a run killed after step 3 leaves it: checkpoint 2, metrics through step 3
    resumed.mkdir()
    shutil.copytree(full / "checkpoints" / "step-0000002", resumed / "checkpoints" / "step-0000002")
    lines = (full / "metrics.jsonl").read_text().splitlines()
    (resumed / "metrics.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])  # a torn last line
    invoke(*train_args(exported, tiny, resumed, 4, 2, "--save-every", "2", "--resume"))
    uninterrupted = train_rows(full)
    after_resume = train_rows(resumed)
    assert [r["step"] for r in after_resume] == [1, 2, 3, 4]
    assert after_resume[:2] == uninterrupted[:2]  # rows before the checkpoint kept as they were
    for step in (2, 3):
        assert after_resume[step]["loss"] == pytest.approx(uninterrupted[step]["loss"], rel=1e-5)
        assert after_resume[step]["lr"] == pytest.approx(uninterrupted[step]["lr"])


def test_lora_trains_and_saves_an_adapter(tiny: Path, exported: Path, tmp_path: Path) -> None:
    from peft import AutoPeftModelForCausalLM

    out = tmp_path / "lora"
    invoke(*train_args(exported, tiny, out, 2, 1, "--lora"))
    assert (out / "adapter_model.safetensors").exists() and not (out / "model.safetensors").exists()
    assert AutoPeftModelForCausalLM.from_pretrained(out).peft_config["default"].r == 16


def test_ddp_on_two_cpu_processes(tiny: Path, exported: Path, tmp_path: Path) -> None:
    """torchrun, gloo on CPUs: the same code path as several GPUs, batches split across ranks."""
    out = tmp_path / "ddp"
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "critique_synth",
    ]
    result = subprocess.run(
        [*torchrun, *train_args(exported, tiny, out, 2, 2)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "x 2 process(es)" in result.stderr
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert all(0 <= r["padding_fraction"] < 1 for r in rows)
    # one scheduler step per optimizer step: step 2 of 2 uses the rate halfway down the cosine
    assert [r["lr"] for r in rows] == pytest.approx([1e-3, 5e-4])


def test_train_without_the_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    monkeypatch.delitem(sys.modules, "critique_synth.trainer.loop")  # so its import runs again
    result = invoke("train", "--data", "x", "--model", "m", "--out", str(tmp_path / "o"), code=2)
    assert "pip install 'critique-synth[train]'" in result.output


def test_bad_data_and_model_paths_are_one_line_before_any_model_loads(exported: Path, tmp_path: Path) -> None:
    from critique_synth.config import ExportOptions
    from critique_synth.export import export

    empty = tmp_path / "x10"  # an export whose cft config kept no rows
    export([exported.parent], empty, ExportOptions(min_tokens=100_000))
    nowhere = "/nonexistent/model"  # the data is checked first, so the model is never reached
    cases = {
        "nonexist": "nonexist: no such file or folder, nor a cached Hub dataset (HF_HUB_OFFLINE is set)",
        str(tmp_path / "nope.jsonl"): "nope.jsonl: no such data file or folder",
        str(exported.parent): f"is a run directory, not a dataset: train on its export (--data {exported})",
        str(empty): "config 'cft' has no 'train' rows",
    }
    for data, message in cases.items():
        result = invoke("train", "--data", data, "--model", nowhere, "--out", str(tmp_path / "o"), code=2)
        assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
    result = invoke(
        "train", "--data", str(exported), "--model", nowhere, "--out", str(tmp_path / "o"), code=2
    )
    assert "/nonexistent/model: no such model file or folder" in result.output
    result = invoke("train", "--data", str(exported), "--model", "someone/nomodel", "--out", "o", code=2)
    assert "not in the Hugging Face cache" in result.output
