"""`python -m evalbatch` runs the CLI."""

from evalbatch.cli import main

main()
