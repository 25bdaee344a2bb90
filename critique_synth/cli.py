"""The `critique-synth` command line: wiring only; the work lives in the library.

Every error the user can fix is one line on stderr and exit code 2; nothing already in the
run directory is touched by a failed start.

Exit codes of `generate`: 0 done; 1 some units hit an internal error (a bug); 2 a user error,
or a run stopped early because the endpoint refuses every request (wrong key, model or
parameter); 3 the run directory holds no critique at the end; 4 stopped at the budget cap
(`--budget`); 130 Ctrl-C; 143 SIGTERM.
Stopped runs are resumable.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from .config import RETRY_REASONS, ExportOptions, load_config
from .errors import UserError, explain
from .progress import STDERR, describe
from .version import __version__

if TYPE_CHECKING:
    from rich.table import Table

    from .plan import Plan
    from .stats import Stats

# Commands import their modules when they run: `--help` stays fast, and `generate` never loads
# the trainer, pyarrow or the Hub client it does not use.

# Flags that generate and audit share, declared once.
TeacherKind = Annotated[str | None, typer.Option(help="builtin | llm")]
TeacherModel = Annotated[str | None, typer.Option(help="teacher model name")]
TeacherBaseUrl = Annotated[list[str] | None, typer.Option(help="teacher endpoint (repeat for replicas)")]
TeacherMode = Annotated[str | None, typer.Option(help="auto | json | text")]
ApiKeyEnv = Annotated[str | None, typer.Option(help="env var holding the key")]
Concurrency = Annotated[int | None, typer.Option(help="most requests in flight")]
Rpm = Annotated[int | None, typer.Option(help="requests per minute")]
Tpm = Annotated[int | None, typer.Option(help="tokens per minute")]

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
err = STDERR


def _print_version(value: bool) -> None:
    if value:
        print(f"critique-synth {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    pass


def _setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    if err.is_terminal:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=err, show_path=False, show_time=False)
        logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "datasets", "huggingface_hub", "filelock", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for own_handler in ("datasets", "huggingface_hub"):  # they print to stderr themselves: not twice
        logging.getLogger(own_handler).propagate = False


def _fields(items: list[str] | None, prefix: str, example: str) -> dict[str, str]:
    """`--field ROLE=COLUMN` flags as {prefix + role: column}."""
    fields = {}
    for item in items or []:
        role, sep, column = item.partition("=")
        if not sep:
            raise UserError(f"--field {item!r}: use ROLE=COLUMN, e.g. --field {example}")
        fields[prefix + role] = column
    return fields


def _teacher_overrides(
    kind: str | None, model: str | None, mode: str | None, base_urls: list[str] | None
) -> dict[str, Any]:
    """The --teacher* flags as config overrides; a model alone means an LLM teacher."""
    return {
        "teacher.kind": kind or ("llm" if model else None),
        "teacher.model": model,
        "teacher.mode": mode,
        "teacher.endpoint.base_urls": base_urls or None,
    }


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(Text("error: ", style="bold red") + Text(message))
    return typer.Exit(code)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="run directory (resumed if it exists)")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML or YAML")] = None,
    problems: Annotated[str | None, typer.Option(help="file, folder or Hub id")] = None,
    split: Annotated[str | None, typer.Option(help="dataset split")] = None,
    field: Annotated[list[str] | None, typer.Option(help="ROLE=COLUMN, e.g. question=prompt")] = None,
    students: Annotated[str | None, typer.Option(help="inject | dataset | llm")] = None,
    student_model: Annotated[list[str] | None, typer.Option(help="student model (repeat)")] = None,
    student_base_url: Annotated[list[str] | None, typer.Option(help="student endpoint")] = None,
    samples: Annotated[int | None, typer.Option(help="responses per problem")] = None,
    teacher: TeacherKind = None,
    teacher_model: TeacherModel = None,
    teacher_base_url: TeacherBaseUrl = None,
    teacher_mode: TeacherMode = None,
    api_key_env: ApiKeyEnv = None,
    concurrency: Concurrency = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    limit: Annotated[
        int | None, typer.Option(help="at most N problems (of this shard, with --shard: N per shard)")
    ] = None,
    shard: Annotated[str | None, typer.Option(help="I/N: this machine's slice")] = None,
    no_export: Annotated[bool, typer.Option("--no-export", help="skip DIR/dataset")] = False,
    dry_run: Annotated[bool, typer.Option(help="print the plan and first prompt only")] = False,
    allow_config_change: Annotated[bool, typer.Option(help="resume under a new config")] = False,
    retry_rejected: Annotated[
        bool, typer.Option(help="redo units rejected for transient or endpoint reasons (retry_rejected)")
    ] = False,
    reasoning_effort: Annotated[str | None, typer.Option(help="low | medium | high")] = None,
    token_param: Annotated[str | None, typer.Option(help="auto | max_tokens | max_completion_tokens")] = None,
    push_to_hub: Annotated[str | None, typer.Option(help="REPO_ID: upload DIR/dataset at the end")] = None,
    private: Annotated[bool, typer.Option(help="with --push-to-hub: a private repo")] = False,
    min_audit_f1: Annotated[
        float | None, typer.Option(help="audit the teacher first (DIR/audit); stop below this F1")
    ] = None,
    batch: Annotated[bool, typer.Option("--batch", help="the Batch API: half price, within 24 h")] = False,
    batch_fallback: Annotated[
        str | None, typer.Option(help="rows of expired/failed batches: resubmit | online")
    ] = None,
    budget: Annotated[float | None, typer.Option(help="USD cap: stop (resumably) before passing it")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Make critiques: problems -> noisy responses -> teacher critiques -> DIR."""
    from .api import Terminated
    from .api import generate as run_generate

    _setup_logging(verbose)
    overrides: dict[str, Any] = {
        "problems.path": problems,
        "problems.split": split,
        "students.kind": students or ("llm" if student_model else None),
        "students.models": student_model or None,
        "students.samples": samples,
        "students.endpoint.base_urls": student_base_url or None,
        **_teacher_overrides(teacher, teacher_model, teacher_mode, teacher_base_url),
        "limit": limit,
        "shard": shard,
        "export.enabled": False if no_export else None,
        "audit.min_f1": min_audit_f1,
        "batch.fallback": batch_fallback,
        "budget_usd": budget,
    }
    for side in ("students", "teacher"):
        overrides[f"{side}.endpoint.batch"] = True if batch else None
        overrides[f"{side}.endpoint.api_key_env"] = api_key_env
        overrides[f"{side}.endpoint.concurrency"] = concurrency
        overrides[f"{side}.endpoint.rpm"] = rpm
        overrides[f"{side}.endpoint.tpm"] = tpm
        overrides[f"{side}.endpoint.reasoning_effort"] = reasoning_effort
        overrides[f"{side}.endpoint.token_param"] = token_param
    try:
        overrides.update(_fields(field, "problems.fields.", "question=prompt"))
        cfg = load_config(config, overrides)
        if retry_rejected and not cfg.retry_rejected:
            cfg = cfg.model_copy(update={"retry_rejected": list(RETRY_REASONS)})
        if dry_run:
            from .estimate import estimate, render
            from .plan import plan

            _print_plan(plan(cfg, out))
            print("\n" + "\n".join(render(estimate(cfg, out))))
            return
        if push_to_hub and not cfg.export.enabled:
            raise UserError("--push-to-hub uploads DIR/dataset: drop --no-export")
        if push_to_hub:
            from .hub import check_repo_id, require_token

            check_repo_id(push_to_hub)  # before the job, not after it
            require_token()
        result = run_generate(cfg, out=out, allow_config_change=allow_config_change, progress=True)
        err.print(f"done: {describe(result.stats)}")
        if result.dataset is not None:
            err.print(f"dataset: {result.dataset.path} ({result.dataset.rows:,} rows)")
        if push_to_hub and result.dataset is not None:
            from .hub import push_to_hub as run_push

            err.print(f"pushed: {run_push(result.dataset.path, push_to_hub, private=private)}")
        if result.internal_errors:
            raise _fail(
                f"{result.internal_errors} unit(s) hit an internal error (a bug; rejected.jsonl has "
                "reason internal_error with the traceback): please report it",
                code=1,
            )
        if not result.stats.critiques:
            reasons = ", ".join(f"{r} {n:,}" for r, n in result.stats.rejects.most_common(3)) or "none"
            raise _fail(
                f"{out} holds no critique (rejected: {reasons}); see {out}/rejected.jsonl, fix the "
                "cause, then rerun with --retry-rejected",
                code=3,
            )
    except UserError as exc:
        from .budget import BudgetExceeded

        raise _fail(str(exc), code=4 if isinstance(exc, BudgetExceeded) else 2) from None
    except KeyboardInterrupt as exc:
        how = "stopped by SIGTERM" if isinstance(exc, Terminated) else "interrupted"
        err.print(f"{how}: everything finished is kept in {out}; rerun the same command to resume")
        raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None


def _print_plan(plan: Plan) -> None:
    print("plan (dry run: nothing is called)")
    print(f"  problems: {plan.problems} (limit {plan.limit or 'none'}, shard {plan.shard or 'all'})")
    print(f"  students: {plan.students}")
    print(f"  teacher: {plan.teacher}")
    print(f"  out: {plan.out} ({plan.done} critiques already there; they are not redone)")
    where = f"problem {plan.first_problem}" if plan.first_problem else "no problems selected"
    if plan.messages is None:
        print(f"\nthe built-in critic uses no prompt; first problem: {where}")
        return
    print(f"\nfirst teacher prompt ({where}):")
    for message in plan.messages:
        print(f"--- {message['role']} ---\n{message['content']}")


@app.command("batches")
def batches_cmd(
    run_dir: Annotated[Path, typer.Argument(help="a run directory made with --batch")],
    cancel: Annotated[
        bool, typer.Option(help="cancel unfinished batches (a rerun resubmits the rest)")
    ] = False,
) -> None:
    """The Batch API batches of a run: ids, states and request counts; --cancel cancels."""
    import asyncio

    from .batch import refresh

    _setup_logging(False)
    try:
        entries = asyncio.run(refresh(run_dir, cancel=cancel))
    except UserError as exc:
        raise _fail(str(exc)) from None
    for e in entries:
        counts = ", ".join(f"{k} {v:,}" for k, v in e.counts.items() if k != "total")
        print(
            f"{e.batch_id or '(not created)'}\t{e.role}\t{e.status}\t{len(e.custom_ids):,} requests\t{counts}"
        )


@app.command("audit")
def audit_cmd(
    data: Annotated[
        str | None,
        typer.Option(help="labelled rows: ProcessBench JSONL or problems with response and labels"),
    ] = None,
    field: Annotated[list[str] | None, typer.Option(help="ROLE=COLUMN, e.g. label=is_correct")] = None,
    split: Annotated[str | None, typer.Option(help="split of a folder or Hub id")] = None,
    sample: Annotated[int | None, typer.Option(min=1, help="audit only the first N rows")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="default: runs/audit/TEACHER-DATA")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="a generate config")] = None,
    teacher: TeacherKind = None,
    teacher_model: TeacherModel = None,
    teacher_base_url: TeacherBaseUrl = None,
    teacher_mode: TeacherMode = None,
    api_key_env: ApiKeyEnv = None,
    concurrency: Concurrency = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    project: Annotated[int | None, typer.Option(min=1, help="project tokens and cost for N units")] = None,
    project_config: Annotated[
        Path | None, typer.Option(help="project for the units of this generate config")
    ] = None,
    allow_config_change: Annotated[bool, typer.Option(help="resume under a new config")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Score a teacher on labelled responses (default: the bundled calibration set) before a run."""
    from .audit import audit as run_audit
    from .audit import audit_table, count_units, default_out

    _setup_logging(verbose)
    overrides: dict[str, Any] = {
        **_teacher_overrides(teacher, teacher_model, teacher_mode, teacher_base_url),
        "teacher.endpoint.api_key_env": api_key_env,
        "teacher.endpoint.concurrency": concurrency,
        "teacher.endpoint.rpm": rpm,
        "teacher.endpoint.tpm": tpm,
        "audit.data": data,
    }
    try:
        overrides.update(_fields(field, "audit.fields.", "label=is_correct"))
        cfg = load_config(config, overrides)
        units = count_units(load_config(project_config, {})) if project_config else project
        report = run_audit(
            cfg,
            out or default_out(cfg, cfg.audit.data),
            data=cfg.audit.data,
            fields=cfg.audit.fields,
            split=split,
            sample=sample,
            project=units,
            allow_config_change=allow_config_change,
        )
    except UserError as exc:
        raise _fail(str(exc)) from None
    Console(width=max(Console().width, 100)).print(audit_table(report))
    err.print(f"audit: {report.path}; per row: {report.out / 'audit.jsonl'}")


@app.command("export")
def export_cmd(
    run_dirs: Annotated[list[Path], typer.Argument(help="one or more run directories (shards merge)")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="default: FIRST_DIR/dataset")] = None,
    format: Annotated[list[str] | None, typer.Option(help="cft | trl | messages | sft (repeat)")] = None,
    test_size: Annotated[float | None, typer.Option(help="share of problems in the test split")] = None,
    disagreements: Annotated[str | None, typer.Option(help="keep | drop | split")] = None,
    select: Annotated[
        str | None, typer.Option(help="several critiques a response: best | majority | all")
    ] = None,
    crosscheck: Annotated[
        str | None, typer.Option(help="keep | drop critiques the built-in checks prove wrong")
    ] = None,
    balance: Annotated[float | None, typer.Option(help="target share of responses known right")] = None,
    dedupe: Annotated[bool, typer.Option(help="drop exact (question, response) duplicates")] = True,
    near_duplicates: Annotated[bool, typer.Option(help="drop near-duplicate questions")] = False,
    min_tokens: Annotated[int | None, typer.Option(help="drop shorter examples")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="drop longer examples (training cutoff)")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="HF tokenizer for token counts")] = None,
    keep_truncated: Annotated[bool, typer.Option(help="keep cut-off or empty critiques")] = False,
    license: Annotated[str | None, typer.Option(help="license id for the card")] = None,
    review: Annotated[Path | None, typer.Option(help="review.jsonl from `view`: leave out drops")] = None,
) -> None:
    """Write a Hub-ready dataset folder (all formats, filters, card) from run directories."""
    from .export import export as run_export

    _setup_logging(False)
    values = {
        "formats": format or None,
        "test_size": test_size,
        "disagreements": disagreements,
        "select": select,
        "crosscheck": crosscheck,
        "balance": balance,
        "dedupe": dedupe,
        "near_duplicate_questions": near_duplicates,
        "min_tokens": min_tokens,
        "max_tokens": max_tokens,
        "tokenizer": tokenizer,
        "drop_truncated": not keep_truncated,
        "license": license,
    }
    try:
        options = _options(ExportOptions, values)
        result = run_export(run_dirs, out or run_dirs[0] / "dataset", options, review=review)
    except UserError as exc:
        raise _fail(str(exc)) from None
    dropped = result.counts["dropped"] or "none"
    unreadable = result.counts["unreadable_lines"]
    skipped = f"; skipped {unreadable:,} unreadable line(s), see the warnings above" if unreadable else ""
    err.print(f"dataset: {result.path} ({result.rows:,} rows; dropped {dropped}{skipped})")


@app.command("view")
def view_cmd(
    run_dirs: Annotated[list[Path], typer.Argument(help="run directories, finished or in progress")],
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8000,
    host: Annotated[str | None, typer.Option(help="bind another address (the page has no login)")] = None,
    review: Annotated[Path | None, typer.Option(help="where keep/drop go; FIRST_DIR/review.jsonl")] = None,
) -> None:
    """A local page to read critiques, disagreements and audits, and mark records keep or drop."""
    from .view.server import serve as serve_view

    _setup_logging(False)
    try:
        server = serve_view(run_dirs, host=host, port=port, review=review)
    except UserError as exc:
        raise _fail(str(exc)) from None
    err.print(f"view: {server.url} (reads {', '.join(map(str, run_dirs))}; Ctrl-C stops)")
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@app.command("push-to-hub")
def push_cmd(
    path: Annotated[Path, typer.Argument(help="an exported dataset folder")],
    repo_id: Annotated[str, typer.Argument(help="owner/name of the dataset repo")],
    private: Annotated[bool, typer.Option(help="create the repo private")] = False,
    revision: Annotated[str | None, typer.Option(help="branch to push to (created if needed)")] = None,
    commit_message: Annotated[str, typer.Option()] = "Upload CFT dataset made with critique-synth",
) -> None:
    """Upload an exported folder to the Hugging Face Hub (token: HF_TOKEN or `hf auth login`)."""
    from .hub import push_to_hub as run_push

    _setup_logging(False)
    try:
        url = run_push(path, repo_id, private=private, revision=revision, commit_message=commit_message)
    except UserError as exc:
        raise _fail(str(exc)) from None
    err.print(f"pushed: {url}")


@app.command()
def stats(run_dir: Annotated[Path, typer.Argument(help="a run directory, finished or in progress")]) -> None:
    """Counts of a run: critiques, rejects by reason, verdicts, agreement with gold, usage."""
    from .store import read_stats

    try:
        counts, summary = read_stats(run_dir)
    except UserError as exc:
        raise _fail(str(exc)) from None
    Console().print(stats_table(run_dir, counts, summary))


def stats_table(run_dir: Path, counts: Stats, summary: dict[str, Any]) -> Table:
    from rich.table import Table

    from .pricing import describe_cost
    from .stats import format_rate

    state = "finished" if summary.get("finished") else "in progress or stopped"
    table = Table(title=f"{run_dir} ({state})")
    table.add_column("what")
    table.add_column("count", justify="right")
    a = counts.agreement
    rows = [
        ("teacher(s)", str(summary.get("teacher", "?"))),
        ("students", str(summary.get("students", "?"))),
        ("critiques", f"{counts.critiques:,}"),
        ("verdict right / wrong", f"{counts.verdicts['right']:,} / {counts.verdicts['wrong']:,}"),
        *((f"  critiques of {label} responses", f"{n:,}") for label, n in sorted(counts.labels.items())),
        ("agreement by process label", format_rate(a.rate("process"), a.judged("process"))),
        ("agreement by final answer", format_rate(a.rate("final_answer"), a.judged("final_answer"))),
        ("first wrong step exact", format_rate(a.step_rate, sum(a.steps.values()))),
        *((f"  cross-check: {flag}", f"{n:,}") for flag, n in counts.crosscheck.most_common()),
        ("rejected", f"{counts.rejected:,}"),
        *((f"  rejected: {reason}", f"{n:,}") for reason, n in counts.rejects.most_common()),
        (
            "tokens prompt / completion",
            f"{counts.usage.prompt_tokens:,} / {counts.usage.completion_tokens:,}",
        ),
        ("cost", describe_cost(counts.usage)),
        ("requests / retries", f"{counts.requests:,} / {counts.retries:,}"),
    ]
    if len(counts.teachers) > 1:
        for name, t in sorted(counts.teachers.items()):
            ta = t.agreement
            rows.append(
                (
                    f"teacher {name}",
                    f"{t.critiques:,} critiques, {t.rejected:,} rejected, agreement "
                    f"{format_rate(ta.rate(), ta.judged())}, {describe_cost(t.usage)}",
                )
            )
        for pair, p in counts.pairwise.items():
            step = format_rate(p["step_agreement"], None)
            rows.append((f"agree: {pair}", f"verdict {p['verdict_agreement']:.1%}, step {step}"))
    for what, value in rows:
        table.add_row(what, value)
    return table


@app.command("train")
def train_cmd(
    data: Annotated[str, typer.Option(help="exported dataset folder, parquet/jsonl file, or Hub id")],
    model: Annotated[str, typer.Option(help="model name or path")],
    out: Annotated[Path, typer.Option("--out", "-o", help="where the trained model goes")],
    objective: Annotated[str, typer.Option(help="cft (critique) | sft (imitation)")] = "cft",
    config_name: Annotated[str | None, typer.Option(help="dataset config; default: the objective")] = None,
    lr: Annotated[float | None, typer.Option(help="default 5e-6 (the paper)")] = None,
    epochs: Annotated[float | None, typer.Option(help="default 1")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after N optimizer steps")] = None,
    batch_size: Annotated[int | None, typer.Option(help="examples per micro-batch per device")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="micro-batches per optimizer step")] = None,
    cutoff: Annotated[int | None, typer.Option(help="max tokens per example (default 2048)")] = None,
    bf16: Annotated[bool | None, typer.Option(help="default: where supported")] = None,
    gradient_checkpointing: Annotated[bool, typer.Option(help="trade compute for memory")] = False,
    lora: Annotated[bool, typer.Option(help="train LoRA adapters (needs peft)")] = False,
    save_every: Annotated[int | None, typer.Option(help="checkpoint every N steps")] = None,
    resume: Annotated[bool, typer.Option(help="continue from the newest checkpoint in --out")] = False,
    limit: Annotated[int | None, typer.Option(help="use at most N examples")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Fine-tune with the CFT or SFT objective (the `train` extra); `accelerate launch` for multi-GPU."""
    from .trainer import TrainOptions
    from .trainer import train as run_train

    _setup_logging(False)
    values = {
        "data": data,
        "model": model,
        "out": out,
        "objective": objective,
        "config_name": config_name,
        "lr": lr,
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "cutoff": cutoff,
        "bf16": bf16,
        "gradient_checkpointing": gradient_checkpointing,
        "lora": lora,
        "save_every": save_every,
        "resume": resume,
        "limit": limit,
        "seed": seed,
    }
    try:
        options = _options(TrainOptions, values)
        result = run_train(options)
    except UserError as exc:
        raise _fail(str(exc)) from None
    err.print(f"trained {result.steps} steps, last loss {result.last_loss:.4f}; model in {result.out}")


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option(help="model path/name, or an OpenAI-compatible base URL")],
    data: Annotated[
        str | None,
        typer.Option(
            help="problems with gold answers: file, folder, exported dataset (its cft config) or Hub id; "
            "default: the bundled held-out set (eval_problems.jsonl), which shares no question with "
            "the sample generate uses"
        ),
    ] = None,
    split: Annotated[str | None, typer.Option(help="split of a folder or Hub id (default test)")] = None,
    config_name: Annotated[str | None, typer.Option(help="dataset config (an export: cft)")] = None,
    field: Annotated[list[str] | None, typer.Option(help="ROLE=COLUMN, e.g. answer=gold_answer")] = None,
    served_model: Annotated[str | None, typer.Option(help="model name at the endpoint")] = None,
    limit: Annotated[int | None, typer.Option(help="at most N problems")] = None,
    batch_size: Annotated[int | None, typer.Option(help="local generation batch")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="default 2048")] = None,
    out: Annotated[Path | None, typer.Option(help="per-problem JSONL")] = None,
) -> None:
    """Greedy answers to math problems with the CFT evaluation prompt, scored against gold."""
    from .trainer import EvalOptions
    from .trainer import evaluate as run_evaluate

    _setup_logging(False)
    values = {
        "model": model,
        "data": data,
        "split": split,
        "config_name": config_name,
        "served_model": served_model,
        "limit": limit,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "out": out,
    }
    try:
        values["fields"] = _fields(field, "", "answer=gold_answer") or None
        result = run_evaluate(_options(EvalOptions, values), console=err)
    except UserError as exc:
        raise _fail(str(exc)) from None
    print(f"accuracy {result.accuracy:.4f} ({result.correct}/{result.total}); per problem: {result.out}")


def _options(model: Any, values: dict[str, Any]) -> Any:
    """Validate the flags given (None = not given) into `model`; errors name the field."""
    from pydantic import ValidationError

    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise UserError(f"invalid option: {explain(exc)}") from None


def main() -> None:
    app()
