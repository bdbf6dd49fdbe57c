"""Errors raised by the drift engine, all under :class:`schemas.errors.DriftlineError`.

Each carries the column (and statistic, where one applies) so a stream operator can
drop or report the offending check without parsing the message.
"""

from __future__ import annotations

from schemas.errors import ConfigError, DriftlineError


class DriftError(DriftlineError):
    """Root of the errors raised by ``drift``."""


class DriftConfigError(DriftError, ConfigError):
    """A monitor, reference or statistic cannot be built as asked.

    ``field`` names the configuration item (e.g. ``"checks[satisfaction].psi"``);
    ``column`` and ``statistic`` are set when the problem is with one check.
    """

    def __init__(
        self,
        field: str,
        message: str,
        *,
        column: str | None = None,
        statistic: str | None = None,
    ) -> None:
        ConfigError.__init__(self, field, message)
        self.column = column
        self.statistic = statistic


class DriftInputError(DriftError):
    """Window or reference values cannot be read as the kind the check expects."""

    def __init__(self, column: str | None, message: str) -> None:
        where = f"column {column!r}: " if column else ""
        super().__init__(f"{where}{message}")
        self.column = column
