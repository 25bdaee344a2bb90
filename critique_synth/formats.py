"""The row shapes each dataset config gets, one function a format.

`cft` is the WebInstruct-CFT layout exactly (alpaca columns, as LLaMA-Factory reads them),
`trl` is TRL's conversational prompt/completion, `messages` is One-Shot CFT's chat layout,
and `sft` is the imitation baseline on the same problems: question -> a correct response.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from .records import CritiqueRecord
from .steps import number_steps

INSTRUCTION = "Please critique whether the following solution to the question is correct."

_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
_META = [
    ("problem_id", pa.string()),
    ("question", pa.string()),
    ("response", pa.string()),
    ("gold_answer", pa.string()),
    ("response_source", pa.string()),
    ("response_correct", pa.bool_()),
    ("process_correct", pa.bool_()),
    ("first_error_step", pa.int64()),
    ("error_kind", pa.string()),
    ("verdict", pa.string()),
    ("reference", pa.string()),
    ("agrees", pa.bool_()),
    ("step_agrees", pa.bool_()),
    ("gold_agrees", pa.bool_()),
    ("crosscheck", pa.string()),
    ("first_wrong_step", pa.int64()),
    ("corrected_answer", pa.string()),
    ("teacher", pa.string()),
    ("selected_by", pa.string()),
    ("key", pa.string()),
]
SCHEMAS = {
    "cft": pa.schema([("instruction", pa.string()), ("input", pa.string()), ("output", pa.string()), *_META]),
    "trl": pa.schema([("prompt", pa.list_(_MESSAGE)), ("completion", pa.list_(_MESSAGE))]),
    "messages": pa.schema([("messages", pa.list_(_MESSAGE))]),
    "sft": pa.schema(
        [
            ("instruction", pa.string()),
            ("input", pa.string()),
            ("output", pa.string()),
            ("problem_id", pa.string()),
            ("response_source", pa.string()),
        ]
    ),
}


def cft_input(question: str, response: str) -> str:
    """The WebInstruct-CFT input, with the solution's steps numbered as the teacher saw them,
    so "step 3" in a critique points at the same text in the training data."""
    return f"Question:\n{question}\n\nSolution:\n{number_steps(response)}"


def user_turn(record: CritiqueRecord) -> str:
    """instruction + newline + input: how LLaMA-Factory joins alpaca columns into a user turn."""
    return f"{INSTRUCTION}\n{cft_input(record.problem.question, record.response.text)}"


def cft_row(record: CritiqueRecord, selected_by: str | None = None) -> dict[str, Any]:
    response = record.response
    return {
        "instruction": INSTRUCTION,
        "input": cft_input(record.problem.question, record.response.text),
        "output": record.text,
        "problem_id": record.problem.id,
        "question": record.problem.question,
        "response": record.response.text,
        "gold_answer": record.problem.answer,
        "response_source": response.source,
        "response_correct": response.final_correct,
        "process_correct": response.process_correct,
        "first_error_step": response.first_error_step,
        "error_kind": response.error_kind,
        "verdict": record.critique.verdict,
        "reference": record.reference,
        "agrees": record.agrees,
        "step_agrees": record.step_agrees,
        "gold_agrees": record.gold_agrees,
        "crosscheck": record.crosscheck,
        "first_wrong_step": record.critique.first_wrong_step,
        "corrected_answer": record.critique.corrected_answer,
        "teacher": record.teacher,
        "selected_by": selected_by,
        "key": record.key,
    }


def trl_row(record: CritiqueRecord, selected_by: str | None = None) -> dict[str, Any]:
    return {
        "prompt": [{"role": "user", "content": user_turn(record)}],
        "completion": [{"role": "assistant", "content": record.text}],
    }


def messages_row(record: CritiqueRecord, selected_by: str | None = None) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": user_turn(record)},
            {"role": "assistant", "content": f"Critique:\n{record.text}"},
        ]
    }


def sft_row(record: CritiqueRecord) -> dict[str, Any]:
    return {
        "instruction": record.problem.question,
        "input": "",
        "output": record.response.text,
        "problem_id": record.problem.id,
        "response_source": record.response.source,
    }


CRITIQUE_ROWS = {"cft": cft_row, "trl": trl_row, "messages": messages_row}


def llamafactory_info(files: dict[str, dict[str, str]]) -> dict[str, Any]:
    """dataset_info.json entries, so LLaMA-Factory reads the folder with `dataset: <name>`."""
    alpaca = {"prompt": "instruction", "query": "input", "response": "output"}
    info: dict[str, Any] = {}
    for fmt, splits in files.items():
        for split, path in splits.items():
            name = fmt if split == "train" else f"{fmt}_{split}"
            if fmt in ("cft", "sft"):
                info[name] = {"file_name": path, "formatting": "alpaca", "columns": alpaca}
            elif fmt == "messages":
                info[name] = {
                    "file_name": path,
                    "formatting": "sharegpt",
                    "columns": {"messages": "messages"},
                    "tags": {
                        "role_tag": "role",
                        "content_tag": "content",
                        "user_tag": "user",
                        "assistant_tag": "assistant",
                    },
                }
    return info
