"""Regenerate schemas/critique.schema.json from the pydantic model (a test checks they agree)."""

import json
from pathlib import Path

from critique_synth.records import critique_schema

OUT = Path(__file__).resolve().parent.parent / "schemas" / "critique.schema.json"

if __name__ == "__main__":
    OUT.write_text(json.dumps(critique_schema(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
