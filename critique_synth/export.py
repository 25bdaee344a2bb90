"""Run directories -> a Hub-ready dataset folder: one config per format, parquet + card.

    out/README.md                    dataset card (YAML: configs, sizes, license, tasks)
    out/dataset_info.json            LLaMA-Factory entries (`dataset: cft`, `sft`, `messages`)
    out/data/<format>/<split>-00000-of-00001.parquet
    out/.critique-synth-export       marker: export made this folder and may replace it

Records stream from the stores in one pass (two when rebalancing verdicts, which needs the
counts first), so memory does not grow with the run, apart from one 8-byte hash a record
for merging shards and dropping duplicates. Each run directory is read under its shared lock,
so never while `generate` writes it. A line that does not parse is skipped, counted and
named in a warning: `generate` skips and redoes it too, so it must not block an export.

Export deletes nothing it did not write: `out` must be new, empty, or an earlier export
(it carries the marker). The folder is built beside `out`, the old one is renamed aside,
the new one renamed in, and only then is the old one removed: a crash at any point leaves
a whole dataset at `out` (or, between the two renames, beside it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .card import read_runs, render_card
from .config import ExportOptions
from .consensus import choose, group, pairwise
from .errors import UserError
from .filters import Filters, balance_class, balance_cutoffs, fraction_of, split_of, token_counter
from .fingerprint import key_int, unit_hash
from .formats import CRITIQUE_ROWS, SCHEMAS, cft_row, llamafactory_info, sft_row
from .lock import RunLock
from .records import CritiqueRecord
from .stats import Stats
from .store import CRITIQUES, RUN, scan
from .version import __version__
from .view.review import read_decisions

log = logging.getLogger(__name__)

BATCH = 5000
MARKER = ".critique-synth-export"
_PARQUET = r"data/[a-z]+/[a-z]+-\d{5}-of-\d{5}\.parquet"


@dataclass
class ExportResult:
    path: Path
    rows: int
    counts: dict[str, Any] = field(default_factory=dict)


def iter_records(run_dirs: list[Path], unreadable: Counter[str] | None = None) -> Iterator[CritiqueRecord]:
    """Records of every run directory, each key once (shards of one job may overlap); lines
    that do not parse are skipped and, with `unreadable`, counted by file (see store.scan)."""
    seen: set[int] = set()
    for run_dir in run_dirs:
        if not (run_dir / CRITIQUES).exists():
            raise UserError(f"{run_dir}: no {CRITIQUES}; is this a critique-synth run directory?")
        for record in scan(run_dir, (CRITIQUES,), unreadable):
            key = key_int(record.key)
            if isinstance(record, CritiqueRecord) and key not in seen:
                seen.add(key)
                yield record


class _Writers:
    """Parquet writers opened on first row, one per (format, split), batched."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._open: dict[tuple[str, str], tuple[pq.ParquetWriter, list[dict[str, Any]]]] = {}
        self.rows: Counter[tuple[str, str]] = Counter()
        self.nbytes: Counter[tuple[str, str]] = Counter()

    def path(self, fmt: str, split: str) -> str:
        return f"data/{fmt}/{split}-00000-of-00001.parquet"

    def add(self, fmt: str, split: str, row: dict[str, Any] | None) -> None:
        slot = (fmt, split)
        if slot not in self._open:
            target = self.root / self.path(fmt, split)
            target.parent.mkdir(parents=True, exist_ok=True)
            self._open[slot] = (pq.ParquetWriter(target, SCHEMAS[fmt]), [])
        if row is None:
            return
        batch = self._open[slot][1]
        batch.append(row)
        self.rows[slot] += 1
        if len(batch) >= BATCH:
            self._flush(slot)

    def _flush(self, slot: tuple[str, str]) -> None:
        writer, batch = self._open[slot]
        if batch:
            table = pa.Table.from_pylist(batch, schema=SCHEMAS[slot[0]])
            writer.write_table(table)
            self.nbytes[slot] += int(table.nbytes)
            batch.clear()

    def close(self) -> dict[str, dict[str, dict[str, int | str]]]:
        """Close everything; sizes per format and split for the card."""
        sizes: dict[str, dict[str, dict[str, int | str]]] = {}
        for slot, (writer, _) in self._open.items():
            self._flush(slot)
            writer.close()
            fmt, split = slot
            path = self.path(fmt, split)
            sizes.setdefault(fmt, {})[split] = {
                "rows": self.rows[slot],
                "nbytes": self.nbytes[slot],
                "file_bytes": (self.root / path).stat().st_size,
                "path": path,
            }
        return sizes


@dataclass
class _Plan:
    """What the first pass decides: which critiques to keep (None: all) and rebalancing cutoffs."""

    chosen: dict[int, str] | None
    cutoffs: dict[str, float]
    ties: int = 0
    review_drops: frozenset[str] = frozenset()  # keys marked drop in a review file
    pairwise: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)  # each directory's run.json, for the card


def _plan(
    dirs: list[Path], options: ExportOptions, count_tokens: Any, review_drops: frozenset[str] = frozenset()
) -> _Plan:
    """Read the stores once to pick critiques (when `select` is not `all`) and once more to
    count what rebalancing must keep (only with `balance`)."""
    runs = read_runs(dirs)
    plan = _Plan(None, {"right": math.inf, "wrong": math.inf}, review_drops=review_drops, runs=runs)
    if options.select != "all" or _several_teachers(runs):
        filters = Filters(options, count_tokens)
        unfit = {unit_hash(key) for key in review_drops}

        def noting_faults(records: Iterator[CritiqueRecord]) -> Iterator[CritiqueRecord]:
            for record in records:
                if filters.fault(record):
                    unfit.add(unit_hash(record.key))
                yield record

        groups = group(noting_faults(iter_records(dirs)))
        plan.pairwise = pairwise(groups)  # over every critique read, kept or not
        if options.select != "all":
            plan.chosen = {}
            for votes in groups.values():
                # a critique the filters or a reviewer drop passes the pick to the next one
                candidates = [v for v in votes if v.key not in unfit]
                picked = choose(candidates, options.select) if candidates else []
                plan.ties += bool(candidates) and not picked
                plan.chosen.update((vote.key, why) for vote, why in picked)
    if options.balance is not None:
        filters = Filters(options, count_tokens)
        fractions: dict[str, list[float]] = {"right": [], "wrong": []}
        for record in iter_records(dirs):
            if _drop_reason(record, filters, plan) is None and not _split_out(record, options):
                fractions[balance_class(record)].append(fraction_of("balance", record.key))
        plan.cutoffs = balance_cutoffs(fractions, options.balance)
    return plan


def _length_summary(lengths: list[int], *, estimated: bool) -> dict[str, Any]:
    """Median and 90th percentile of the kept critiques' lengths in tokens."""
    ordered = sorted(lengths) or [0]
    return {
        "median": ordered[len(ordered) // 2],
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "counted": "estimated (4 characters a token)" if estimated else "with the tokenizer",
    }


def _several_teachers(runs: list[dict[str, Any]]) -> bool:
    names = {name for run in runs for name in run.get("teachers") or [run.get("teacher")]}
    return len(names) > 1


def _drop_reason(record: CritiqueRecord, filters: Filters, plan: _Plan) -> str | None:
    """Both passes ask this in the same order: the filters keep state (duplicates seen)."""
    if record.key in plan.review_drops:
        return "review_drop"
    fault = filters.fault(record)  # counted under its own reason, not as "not selected"
    if fault is not None:
        return fault
    if plan.chosen is not None and unit_hash(record.key) not in plan.chosen:
        return "not_selected"
    return filters.duplicate(record)


def _split_out(record: CritiqueRecord, options: ExportOptions) -> bool:
    return options.disagreements == "split" and record.agrees is False


def export(
    run_dirs: list[Path] | list[str] | Path | str,
    out: Path | str,
    options: ExportOptions | None = None,
    review: Path | str | None = None,
) -> ExportResult:
    """Write the dataset folder for `run_dirs` (merged) at `out`; with `review` (the review.jsonl
    of `critique-synth view`), records marked drop there are left out."""
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    out = Path(out)
    options = options or ExportOptions()
    check_out(out)
    review_drops = review_drops_of(Path(review)) if review is not None else frozenset()
    for run_dir in dirs:
        if not (run_dir / CRITIQUES).exists():
            raise UserError(f"{run_dir}: no {CRITIQUES}; is this a critique-synth run directory?")
    with ExitStack() as locks:
        for run_dir in dict.fromkeys(d.resolve() for d in dirs):
            locks.enter_context(RunLock(run_dir, "export", shared=True))
        count_tokens = token_counter(options)
        plan = _plan(dirs, options, count_tokens, review_drops)
        tmp = _make_tmp(out)
        try:
            sizes, counts = _write(dirs, tmp, options, count_tokens, plan)
            check_out(out)
            _swap_in(tmp, out)
        except OSError as exc:
            raise UserError(
                f"{out}: cannot write the dataset ({exc.strerror or exc}); any earlier export there is kept"
            ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    main_rows = sum(s["rows"] for s in sizes.get(options.formats[0], {}).values())
    return ExportResult(out, int(main_rows), counts)


def _write(
    dirs: list[Path], tmp: Path, options: ExportOptions, count_tokens: Any, plan: _Plan
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The whole dataset folder in `tmp`; its sizes and counts."""
    writers = _Writers(tmp)
    for fmt in options.formats:
        writers.add(fmt, "train", None)  # every config the card names exists, if empty
    filters = Filters(options, count_tokens)
    critique_formats = [f for f in options.formats if f in CRITIQUE_ROWS]
    sft_pairs: set[int] = set()
    unreadable: Counter[str] = Counter()
    stats = Stats(pairwise=plan.pairwise)
    lengths: list[int] = []
    records = 0
    samples: list[dict[str, Any]] = []
    try:
        for record in iter_records(dirs, unreadable):
            records += 1
            stats.add_record(record)
            split = split_of(record.problem.id, options.test_size)
            known = record.response.best_label
            if "sft" in options.formats and known and known[1] and _fits(record, options, count_tokens):
                pair = unit_hash(record.problem.question, record.response.text)
                if pair not in sft_pairs:
                    sft_pairs.add(pair)
                    writers.add("sft", split, sft_row(record))
            reason = _drop_reason(record, filters, plan)
            rebalanced = fraction_of("balance", record.key) > plan.cutoffs[balance_class(record)]
            if reason is None and not _split_out(record, options) and rebalanced:
                reason = "rebalanced"
            if reason is not None:
                filters.dropped[reason] += 1
                continue
            split = "disagreements" if _split_out(record, options) else split
            why = plan.chosen.get(unit_hash(record.key)) if plan.chosen is not None else "all"
            for fmt in critique_formats:
                writers.add(fmt, split, CRITIQUE_ROWS[fmt](record, why))
            lengths.append(count_tokens(record.text))
            if len(samples) < 2 and split == "train":
                samples.append(cft_row(record, why))
    finally:
        sizes = writers.close()
    for path, n in unreadable.items():
        log.warning("%s: %d unreadable line(s) skipped in all", path, n)
    counts = {
        "records_read": records,
        "unreadable_lines": sum(unreadable.values()),
        "dropped": dict(filters.dropped),
        "critique_tokens": _length_summary(lengths, estimated=options.tokenizer is None),
        "selection": {"select": options.select, "ties_without_a_majority": plan.ties},
        "rows": {fmt: {split: s["rows"] for split, s in splits.items()} for fmt, splits in sizes.items()},
    }
    files = {fmt: {split: str(s["path"]) for split, s in splits.items()} for fmt, splits in sizes.items()}
    (tmp / "dataset_info.json").write_text(json.dumps(llamafactory_info(files), indent=2), encoding="utf-8")
    card = render_card(sizes, plan.runs, options, counts, samples, stats)
    (tmp / "README.md").write_text(card, encoding="utf-8")
    marker = {
        "made_by": "critique-synth export",
        "version": __version__,
        "created_at": time.time(),
        "files": sorted(_files_below(tmp)),  # what it may replace next time, and nothing else
    }
    (tmp / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    return sizes, counts


def _files_below(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if not path.is_dir()}


def review_drops_of(path: Path) -> frozenset[str]:
    """Keys whose latest review decision is drop."""
    if not path.is_file():
        raise UserError(
            f"--review {path}: no such file; give the review.jsonl that `critique-synth view` wrote"
        )
    return frozenset(key for key, decision in read_decisions(path).items() if decision == "drop")


def check_out(out: Path) -> None:
    """Refuse an `out` holding anything export did not write: export replaces its `out`."""
    if out.is_symlink():
        raise UserError(f"{out} is a symbolic link; give export the real folder, or a new path")
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out} is an existing file; export writes a folder: choose a new path")
    if _is_run_dir(out):
        raise UserError(
            f"{out} is a run directory ({CRITIQUES}, {RUN}); export replaces its target: "
            f"choose a new folder such as {out / 'dataset'}"
        )
    if not (out / MARKER).is_file():
        if next(out.iterdir(), None) is not None:
            raise UserError(
                f"{out} is a folder export did not make (not empty, no {MARKER}) and export replaces "
                "its target: remove it if it is an old export, or choose a new or empty folder"
            )
        return
    for below, _, _ in os.walk(out):
        if _is_run_dir(Path(below)):
            raise UserError(f"{out} holds a run directory ({below}); choose another folder for the dataset")
    foreign = sorted(_files_below(out) - _written_by_export(out))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(
            f"{out} holds files export did not write ({shown}); export replaces its target: move them "
            "out, or choose another folder"
        )


def _written_by_export(out: Path) -> set[str]:
    """The files the marker lists as export's own; a marker from before the list existed owns
    the export layout (card, dataset_info.json, parquet under data/)."""
    try:
        listed = json.loads((out / MARKER).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        listed = None
    if not isinstance(listed, list):
        layout = {"README.md", "dataset_info.json"}
        listed = [name for name in _files_below(out) if name in layout or re.fullmatch(_PARQUET, name)]
    return {MARKER, *(name for name in listed if isinstance(name, str))}


def _is_run_dir(path: Path) -> bool:
    return (path / CRITIQUES).exists() or (path / RUN).exists()


def _make_tmp(out: Path) -> Path:
    """A new, empty folder beside `out` (same filesystem, so the renames are atomic)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".export-tmp", dir=out.parent))
    except OSError as exc:
        raise UserError(f"{out.parent}: cannot make a folder for the dataset ({exc.strerror})") from None


def _swap_in(tmp: Path, out: Path) -> None:
    """Old folder aside, new one in, old one removed: `out` is never a half-written dataset."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:12]}")
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fits(record: CritiqueRecord, options: ExportOptions, count_tokens: Any) -> bool:
    if options.max_tokens is None:
        return True
    return count_tokens(record.problem.question) + count_tokens(record.response.text) <= options.max_tokens
