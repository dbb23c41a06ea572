"""Errors raised on bad user input. Each message names the field, file and line where known."""


class JaflowError(Exception):
    """Base class for errors a user can fix by changing config or data."""


class ConfigError(JaflowError):
    """The config is invalid (schema, graph, unknown references)."""


class DataError(JaflowError):
    """An input data file is malformed, or a sampling rule left nothing."""
