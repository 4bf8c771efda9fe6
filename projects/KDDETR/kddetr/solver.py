"""Optimizer helpers usable from LazyConfig (serialisable, no lambdas)."""
from __future__ import annotations


class LrFactor:
    """``lr_factor_func`` for Detectron2's ``get_default_optimizer_params``: ``factor`` for
    parameters whose module name contains ``pattern`` (the backbone: 0.1 in DETR), else 1."""

    def __init__(self, pattern: str = "backbone", factor: float = 0.1):
        self.pattern, self.factor = pattern, factor

    def __call__(self, module_name: str) -> float:
        return self.factor if self.pattern in module_name else 1.0
