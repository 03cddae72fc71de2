"""Errors the user can act on.

Every failure caused by input (a bad checkpoint, a missing tool, an inconsistent option) is raised as a
:class:`LiquidEdgeError`. The CLI prints it as one line, ``error: <what is wrong> (<how to fix it>)``, and
exits with :attr:`exit_code`; it never shows a traceback for these.
"""

from __future__ import annotations

#: Exit codes shared by every command.
EXIT_OK = 0
EXIT_PARITY_FAILED = 1
EXIT_USAGE = 2


class LiquidEdgeError(Exception):
    """A problem with the user's input or environment, with the fix."""

    exit_code = EXIT_USAGE

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = " ".join(self.problem.split())
        if self.fix:
            text += f" ({' '.join(self.fix.split())})"
        return text


class ModelFormatError(LiquidEdgeError):
    """The checkpoint cannot be read or does not describe a supported liquid network."""


class ConfigError(LiquidEdgeError):
    """Hyper-parameters that the checkpoint cannot tell are missing, ambiguous or contradictory."""


class ToolMissingError(LiquidEdgeError):
    """An external program (compiler, emulator) is not installed."""


class BuildError(LiquidEdgeError):
    """Generated code failed to compile or link."""


class RunError(LiquidEdgeError):
    """A compiled program crashed, hung or printed something unexpected."""
