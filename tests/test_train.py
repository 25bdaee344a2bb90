"""The bundled trainer and evaluator, on a tiny model built here, on the CPU."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import critique_synth
from critique_synth.testserver import MockLLMServer
from critique_synth.train.data import IGNORE, DataReport, Encoder, collate
from critique_synth.train.loop import TargetLoss
from critique_synth.train.tiny import make_model, make_tokenizer

from .conftest import cli_env, read_jsonl, run_cli


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


def test_train_cli_end_to_end_both_objectives(tiny: Path, exported: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    for objective in ("cft", "sft"):
        out = tmp_path / objective
        result = run_cli(*train_args(exported, tiny, out, 3, 2, "--objective", objective, "--cutoff", "1024"))
        assert result.returncode == 0, result.stderr
        assert "lr 0.001 | epochs 1 | cosine schedule, warmup ratio 0.1 | cutoff 1024" in result.stderr
        rows = read_jsonl(out / "metrics.jsonl")
        assert [r["step"] for r in rows] == [1, 2, 3]
        assert all(r["tokens"] > 0 and 0 <= r["padding_fraction"] < 1 for r in rows)
        AutoModelForCausalLM.from_pretrained(out)


def test_resume_gives_the_same_next_step_loss(tiny: Path, exported: Path, tmp_path: Path) -> None:
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    assert run_cli(*train_args(exported, tiny, full, 4, 2, "--save-every", "2")).returncode == 0
    assert (full / "checkpoints" / "step-0000002" / "tokenizer_config.json").exists()
    shutil.copytree(full / "checkpoints", resumed / "checkpoints")
    result = run_cli(*train_args(exported, tiny, resumed, 4, 2, "--save-every", "2", "--resume"))
    assert result.returncode == 0, result.stderr
    uninterrupted = {r["step"]: r["loss"] for r in read_jsonl(full / "metrics.jsonl")}
    after_resume = {r["step"]: r["loss"] for r in read_jsonl(resumed / "metrics.jsonl")}
    assert sorted(after_resume) == [3, 4]
    for step in (3, 4):
        assert after_resume[step] == pytest.approx(uninterrupted[step], rel=1e-5)


def test_lora_trains_and_saves_an_adapter(tiny: Path, exported: Path, tmp_path: Path) -> None:
    from peft import AutoPeftModelForCausalLM

    out = tmp_path / "lora"
    result = run_cli(*train_args(exported, tiny, out, 2, 1, "--lora"))
    assert result.returncode == 0, result.stderr
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
    # one scheduler step per optimizer step: halfway down the cosine after step 1 of 2
    assert rows[0]["lr"] == pytest.approx(5e-4)


def test_eval_scores_answer_forms_against_gold(server: MockLLMServer, tmp_path: Path) -> None:
    problems = [
        ("q1", "How many pears, case one?", "42", "So the total is \\boxed{42}."),
        ("q2", "How many pears, case two?", "17", "Adding up:\n#### 17"),
        ("q3", "How many pears, case three?", "6", "The answer is 5."),
        ("q4", "What fraction, case four?", "0.5", "It is \\boxed{\\frac{1}{2}}."),
    ]
    path = tmp_path / "problems.jsonl"
    path.write_text(
        "".join(json.dumps({"id": i, "question": q, "answer": a}) + "\n" for i, q, a, _ in problems)
    )
    server.config.answers = {q: reply for _, q, _, reply in problems}
    out = tmp_path / "eval.jsonl"
    result = run_cli("eval", "--model", server.base_url, "--data", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "accuracy 0.7500 (3/4)" in result.stdout
    rows = {r["id"]: r for r in read_jsonl(out)}
    assert [rows[i]["correct"] for i in ("q1", "q2", "q3", "q4")] == [True, True, False, True]
    assert rows["q2"]["final_answer"] == "17"


def test_local_eval_batches_like_single_requests(tiny: Path, tmp_path: Path) -> None:
    from critique_synth.train import EvalOptions, evaluate

    runs = {}
    for batch_size in (1, 3):
        out = tmp_path / f"eval-{batch_size}.jsonl"
        evaluate(EvalOptions(model=str(tiny), limit=3, batch_size=batch_size, max_new_tokens=6, out=out))
        runs[batch_size] = [r["response"] for r in read_jsonl(out)]
    assert len(runs[1]) == 3 and runs[1] == runs[3]


def test_train_without_the_extra_says_what_to_install(tmp_path: Path) -> None:
    code = "import sys; sys.modules['torch'] = None; from critique_synth.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "train", "--data", "x", "--model", "m", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert result.returncode == 2
    assert "pip install 'critique-synth[train]'" in result.stderr
