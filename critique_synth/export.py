"""Run directories -> a Hub-ready dataset folder: one config per format, parquet + card.

    out/README.md                    dataset card (YAML: configs, sizes, license, tasks)
    out/dataset_info.json            LLaMA-Factory entries (`dataset: cft`, `sft`, `messages`)
    out/data/<format>/<split>-00000-of-00001.parquet

Records stream from the stores in one pass (two when rebalancing verdicts, which needs the
counts first), so memory does not grow with the run, apart from one 8-byte hash a record
for merging shards and dropping duplicates. The folder is built beside `out` and swapped in
at the end: a failed export leaves the previous one in place.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .card import render_card
from .config import ExportOptions
from .errors import UserError
from .filters import Filters, balance_keep_rates, fraction_of, split_of, token_counter
from .fingerprint import unit_hash
from .formats import CRITIQUE_ROWS, SCHEMAS, cft_row, llamafactory_info, sft_row
from .records import CritiqueRecord
from .store import CRITIQUES, iter_lines

BATCH = 5000


@dataclass
class ExportResult:
    path: Path
    rows: int
    counts: dict[str, Any] = field(default_factory=dict)


def iter_records(run_dirs: list[Path]) -> Iterator[CritiqueRecord]:
    """Records of every run directory, each key once (shards of one job may overlap)."""
    seen: set[int] = set()
    for run_dir in run_dirs:
        path = run_dir / CRITIQUES
        if not path.exists():
            raise UserError(f"{run_dir}: no {CRITIQUES}; is this a critique-synth run directory?")
        for number, line in iter_lines(path):
            try:
                record = CritiqueRecord.model_validate_json(line)
            except ValueError:
                raise UserError(f"{path}:{number}: not a valid critique record") from None
            key = int(record.key[:16], 16)
            if key not in seen:
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


def _balance_rates(dirs: list[Path], options: ExportOptions, count_tokens: Any) -> dict[str, float]:
    """First pass, only when rebalancing: verdict counts of what the filters would keep."""
    if options.balance is None:
        return {"right": 1.0, "wrong": 1.0}
    filters = Filters(options, count_tokens)
    verdicts: Counter[str] = Counter()
    for record in iter_records(dirs):
        if filters.reason_to_drop(record) is None and not _split_out(record, options):
            verdicts[record.critique.verdict] += 1
    return balance_keep_rates(verdicts["right"], verdicts["wrong"], options.balance)


def _split_out(record: CritiqueRecord, options: ExportOptions) -> bool:
    return options.disagreements == "split" and record.gold_agrees is False


def export(
    run_dirs: list[Path] | list[str] | Path | str,
    out: Path | str,
    options: ExportOptions | None = None,
) -> ExportResult:
    """Write the dataset folder for `run_dirs` (merged) at `out`."""
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    out = Path(out)
    options = options or ExportOptions()
    count_tokens = token_counter(options)
    rates = _balance_rates(dirs, options, count_tokens)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writers = _Writers(tmp)
    writers.add(options.formats[0], "train", None)
    filters = Filters(options, count_tokens)
    critique_formats = [f for f in options.formats if f in CRITIQUE_ROWS]
    sft_pairs: set[int] = set()
    records = 0
    samples: list[dict[str, Any]] = []
    try:
        for record in iter_records(dirs):
            records += 1
            split = split_of(record.problem.id, options.test_size)
            if "sft" in options.formats and record.response.final_correct and _fits(record, options, count_tokens):
                pair = unit_hash(record.problem.question, record.response.text)
                if pair not in sft_pairs:
                    sft_pairs.add(pair)
                    writers.add("sft", split, sft_row(record))
            reason = filters.reason_to_drop(record)
            rebalanced = fraction_of("balance", record.key) >= rates[record.critique.verdict]
            if reason is None and not _split_out(record, options) and rebalanced:
                reason = "rebalanced"
            if reason is not None:
                filters.dropped[reason] += 1
                continue
            split = "disagreements" if _split_out(record, options) else split
            for fmt in critique_formats:
                writers.add(fmt, split, CRITIQUE_ROWS[fmt](record))
            if len(samples) < 2 and split == "train":
                samples.append(cft_row(record))
    finally:
        sizes = writers.close()
    counts = {
        "records_read": records,
        "dropped": dict(filters.dropped),
        "rows": {fmt: {split: s["rows"] for split, s in splits.items()} for fmt, splits in sizes.items()},
    }
    files = {fmt: {split: str(s["path"]) for split, s in splits.items()} for fmt, splits in sizes.items()}
    (tmp / "dataset_info.json").write_text(json.dumps(llamafactory_info(files), indent=2), encoding="utf-8")
    (tmp / "README.md").write_text(render_card(sizes, dirs, options, counts, samples), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    main_rows = sum(s["rows"] for s in sizes.get(options.formats[0], {}).values())
    return ExportResult(out, int(main_rows), counts)


def _fits(record: CritiqueRecord, options: ExportOptions, count_tokens: Any) -> bool:
    if options.max_tokens is None:
        return True
    return count_tokens(record.problem.question) + count_tokens(record.response.text) <= options.max_tokens
