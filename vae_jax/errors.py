"""The one exception type the command-line tools turn into a one-line message and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a flag, a path, a dataset or a checkpoint that cannot be used."""


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss; the last good checkpoint was left untouched."""
