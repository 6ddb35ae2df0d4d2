"""Errors a user can cause or fix. The CLI prints them as one line, no traceback, and exits
with the error's exit_code: 2 for bad input (nothing was created or deleted), 1 for a
failure on the cloud or a host (run the command again, or put the cloud right)."""


class LabError(Exception):
    """Base of every error whose message tells the user what to do; bad input (exit 2) unless a subclass says otherwise."""

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


class CloudStateError(CloudError):
    """What exists in EC2 contradicts the lab (it runs in another subnet, a volume is attached elsewhere).

    The input is fine and EC2 answered; the cloud is in a state `up` will not guess its way
    out of, so this is a failure on the cloud (exit 1), not bad input (exit 2).
    """
