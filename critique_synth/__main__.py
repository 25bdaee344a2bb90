"""`python -m critique_synth` runs the CLI."""

from .cli import main

main()
