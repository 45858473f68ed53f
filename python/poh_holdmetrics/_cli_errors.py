"""The command line's name and errors: every part of the CLI raises CliError (reported as
"poh-holdmetrics: error: ...", exit 1) or UsageError (with the usage line, exit 2), and
_cli.main turns them into exit codes."""

from __future__ import annotations

PROG = "poh-holdmetrics"


class CliError(Exception):
    """An error to report as "poh-holdmetrics: error: ..." with exit code 1."""


class UsageError(CliError):
    """Options that do not go together: reported with the usage line, exit code 2."""
