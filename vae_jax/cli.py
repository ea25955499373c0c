"""What the command-line tools share: argument parsing that fails in one line, and error exits."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from vae_jax.errors import NonFiniteLoss, UserError


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def main(body: Callable[[], None]) -> None:
    """Run a CLI body: UserError -> one line + exit 2; non-finite loss -> one line + exit 3."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    for noisy in ("absl", "jax._src.xla_bridge"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        body()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
