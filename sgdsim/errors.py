"""Errors that the CLI turns into a one-line message and exit code 2."""


class SgdsimError(Exception):
    """Base class: bad input or an unusable file; the message names the problem in one line."""


class ParameterError(SgdsimError, ValueError):
    """A parameter is unknown, of the wrong type or out of range."""


class RunFileError(SgdsimError, OSError):
    """A run file is missing, corrupt or not an sgdsim run file."""
