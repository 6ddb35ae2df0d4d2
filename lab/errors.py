"""Errors a user can cause or fix. The CLI prints them as one line and exits 2, no traceback."""


class LabError(Exception):
    """Base of every error whose message tells the user what to do."""

    exit_code = 2


class ConfigError(LabError):
    """The lab description is invalid; raised before any cloud call is made."""

    def __init__(self, path: str, key: str, expected: str):
        self.path, self.key, self.expected = path, key, expected
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {expected}")


class NotAvailableError(LabError):
    """A feature or target that cannot run on this machine or in this state."""


class CloudError(LabError):
    """An EC2 call failed for a reason that is not transient, or retries ran out."""

    exit_code = 1


class RemoteError(LabError):
    """A command on a lab host failed; the message names host, step and exit code."""

    exit_code = 1
