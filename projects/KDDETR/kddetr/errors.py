"""The project's refusals: bad input named with its fix. ``train_net.py`` and the tools print one as a
single line and exit with status 1, without a traceback; any other exception keeps its traceback."""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator


class Refusal(Exception):
    """Marks an exception whose message is the whole story (what is wrong, with which key or file, and
    the fix)."""


class ConfigError(Refusal, ValueError):
    """A configuration that cannot work (a value, a combination of keys)."""


class InputError(Refusal, ValueError):
    """An input file that is there but unusable (a malformed dataset json, an empty dataset)."""


class MissingInputError(Refusal, FileNotFoundError):
    """An input file that is not there (or is a directory)."""


class NonFiniteError(Refusal, FloatingPointError):
    """Training stopped on a non-finite loss or gradient, before the weights changed."""


@contextlib.contextmanager
def refusals_exit(program: str) -> Iterator[None]:
    """Inside: a :class:`Refusal` ends the program with ``"<program>: <message>"`` on stderr and status 1."""
    try:
        yield
    except Refusal as e:
        print(f"{program}: {e}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
