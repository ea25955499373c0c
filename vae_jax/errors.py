"""The exceptions the command-line tools turn into a one-line message and an exit code of their own."""


class UserError(Exception):
    """Bad input from the user: a flag, a path, a dataset or a checkpoint that cannot be used."""


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss; the last good checkpoint was left untouched."""


class Preempted(BaseException):
    """Training was stopped by SIGTERM or SIGINT after a checkpoint of the current step was saved.
    A BaseException, as KeyboardInterrupt is: raised from a signal handler at any point of the final
    evaluation, it must not be taken for an error by library code that catches Exception (JAX's
    compilation cache does, and would carry on)."""

    def __init__(self, step: int | None, signal_name: str):
        saved = f"checkpoint saved at step {step}" if step is not None else "no checkpoint could be saved"
        super().__init__(f"{signal_name}: {saved}")
        self.step = step
        self.signal_name = signal_name


class DiskFull(Exception):
    """A checkpoint could not be written for lack of space; the earlier steps are intact."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type's name."""
    text = str(e).strip().split(" See full TensorStore details")[0]  # then a repr of the whole TensorStore spec
    return text.splitlines()[0][:200] if text else type(e).__name__
