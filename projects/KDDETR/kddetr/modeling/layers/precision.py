"""Full precision where mixed precision would change a result: matching costs and the
distillers' masks and similarity logits."""
from __future__ import annotations

import contextlib
import functools
from typing import Callable, TypeVar

import torch

F = TypeVar("F", bound=Callable)


def full_precision(fn: F) -> F:
    """Run ``fn`` with autocast switched off on every device where it is on (``train.amp``: fp16
    on CUDA, bf16 on the CPU), so that its matrix products stay in float32; ``fn`` casts its
    inputs to float32 itself. Without autocast it costs one check per device."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            for device in ("cuda", "cpu"):
                if torch.is_autocast_enabled(device):
                    stack.enter_context(torch.autocast(device, enabled=False))
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
