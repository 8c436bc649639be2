"""Errors a user can act on.

Every entry point (CLI, API, TUI) turns a ``SimError`` into one clear line that names what is
wrong; anything else is a bug and is reported as such.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class SimError(Exception):
    """Base for errors caused by input, configuration or the environment, not by a bug."""

    exit_code = 2
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(SimError):
    """A value given by the user is wrong; ``field`` names it (dotted path)."""

    http_status = 422

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    @classmethod
    def from_validation(cls, prefix: str, exc: ValidationError) -> InvalidInput:
        """The first pydantic error as ``prefix.field: reason`` (the others follow in reason)."""
        errors = exc.errors(include_url=False)
        parts = []
        for err in errors:
            loc = ".".join(str(p) for p in err["loc"])
            field = f"{prefix}.{loc}" if loc else prefix
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            elif err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"] == "value_error":
                msg = msg.removeprefix("Value error, ")  # our own validators' words
            parts.append((field, msg))
        field, reason = parts[0]
        if len(parts) > 1:
            reason += "; " + "; ".join(f"{f}: {m}" for f, m in parts[1:])
        return cls(field, reason)


class ConfigError(SimError):
    """The configuration (environment or TOML file) is wrong."""


class DatabaseUnavailable(SimError):
    """The database cannot be reached or started."""

    http_status = 503


class NotFound(SimError):
    http_status = 404


class Conflict(SimError):
    http_status = 409


class Forbidden(SimError):
    http_status = 403
