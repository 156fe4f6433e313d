"""Errors a user can fix (bad params, unreadable source): the CLI prints them without a traceback."""


class UserError(Exception):
    """An error in the user's input or set-up; its message says what to do."""


class SourceError(UserError):
    """A dataset source cannot be read or reached (missing file, bad URL, broken JSON document)."""


class ConfigError(UserError, ValueError):
    """A params section does not match its dataclass, or names an unknown preset."""
