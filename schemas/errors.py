"""The one root exception of driftline and its direct families.

Every error driftline raises on purpose derives from :class:`DriftlineError`, so a
caller can catch ours without catching Python's own. Each subclass carries the
fields a caller needs to act (which field, which service, which kind of bad record).
"""

from __future__ import annotations


class DriftlineError(Exception):
    """Root of every error driftline raises on purpose."""


class ConfigError(DriftlineError):
    """A configuration value is missing or invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid configuration for {field!r}: {message}")
        self.field = field


class ServiceUnavailable(DriftlineError):
    """A service we depend on does not answer; ``hint`` says how to start it."""

    def __init__(self, service: str, address: str, hint: str) -> None:
        super().__init__(f"{service} is not reachable at {address}. {hint}")
        self.service = service
        self.address = address
        self.hint = hint
