"""Host syncs per training step, counted on the CPU: every call that makes the host wait for the device
on CUDA (``.item()``, ``.cpu()``, ``.tolist()``, ``.numpy()``, ``bool()`` / ``int()`` / ``float()`` of a
tensor, and a tensor made from host data with a ``device``) in one trainer step, against the budget of two:
the copy of the step's matching costs to the host (scipy) and the finite check before the optimizer step.

Tensors made on the host on purpose (explicitly ``device="cpu"``) and what ``.cpu()`` returned are host
tensors: reading them costs nothing. ``.to(device)`` is not counted: on the CPU a copy to the host cannot be
told from one to the model's device (the package makes its host copies with ``.cpu()``). The step measured
is not a metric-writing one (``train.log_period``), which adds one copy."""
import os
import sys
from collections import Counter

import pytest
import torch
from conftest import ROOT, build_tiny_dino, synthetic_batch
from test_device import distillers
from torch.overrides import TorchFunctionMode

BUDGET = 2
SYNCING = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.__bool__, torch.Tensor.cpu,
           torch.Tensor.__int__, torch.Tensor.__float__, torch.Tensor.__index__}


class SyncCount(TorchFunctionMode):
    """Counts the syncing calls by ``file:line`` (the innermost frame outside torch)."""

    def __init__(self):
        super().__init__()
        self.calls = Counter()
        self._host = set()  # data pointers of host tensors

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in SYNCING and args[0].untyped_storage().data_ptr() not in self._host:
            self._count(func.__name__)
        if func in (torch.tensor, torch.as_tensor) and args and not isinstance(args[0], torch.Tensor) \
                and kwargs.get("device") not in (None, "cpu"):
            self._count(f"{func.__name__} of host data")
        if isinstance(out, torch.Tensor) and (func is torch.Tensor.cpu or kwargs.get("device") == "cpu"):
            self._host.add(out.untyped_storage().data_ptr())
        return out

    def _count(self, what: str) -> None:
        frame = sys._getframe(2)
        while frame is not None and os.sep + "torch" + os.sep in frame.f_code.co_filename:
            frame = frame.f_back
        self.calls[f"{what} at {os.path.relpath(frame.f_code.co_filename, ROOT)}:{frame.f_lineno}"] += 1


def syncs_of_a_step(trainer) -> Counter:
    """The syncs of the trainer's second step (the first warms up lazily built state); log period 20."""
    from detectron2.utils.events import EventStorage

    trainer.gather_metric_period, trainer.max_iter = 20, 100
    with EventStorage(0) as trainer.storage:
        trainer.iter = 0
        trainer.run_step()
        trainer.iter = 1
        with SyncCount() as count:
            trainer.run_step()
    return count.calls


#: the distillers whose steps still hold more: DETRDistill's two matchings and the Table 1 baselines' matching of
#: both models' layers each copy their costs on their own, besides the student's criterion (issue 33)
OVER_BUDGET = {"detrdistill", "kd_detr_and_detrdistill", "similar_general", "similar_foreground"}


@pytest.mark.parametrize("name", ["kd_detr", "detrdistill", "kd_detr_and_detrdistill", "inconsistent",
                                  "similar_general", "similar_foreground"])
def test_a_distillation_step_syncs_at_most_twice(name, request):
    from kddetr.engine import DistillTrainer

    if name in OVER_BUDGET:
        request.applymarker(pytest.mark.xfail(strict=True, reason="their matchings copy on their own"))
    model = distillers()[name]().train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    calls = syncs_of_a_step(DistillTrainer(model, [synthetic_batch(2)] * 3, opt, device="cpu", seed=3))
    assert sum(calls.values()) <= BUDGET, dict(calls)


def test_a_single_model_step_syncs_at_most_twice_and_a_writing_step_once_more():
    from kddetr.engine import Trainer

    model = build_tiny_dino().train()
    trainer = Trainer(model, [synthetic_batch(2)] * 3, torch.optim.SGD(model.parameters(), lr=0.0), device="cpu")
    calls = syncs_of_a_step(trainer)
    assert sum(calls.values()) <= BUDGET, dict(calls)
    trainer.gather_metric_period = 2  # the step measured writes the metrics
    from detectron2.utils.events import EventStorage

    with EventStorage(1) as trainer.storage, SyncCount() as count:
        trainer.iter = 1
        trainer.run_step()
        assert "total_loss" in trainer.storage.histories()
    assert sum(count.calls.values()) <= BUDGET + 1, dict(count.calls)


def test_the_count_can_fail():
    with SyncCount() as count:
        x = torch.ones(3)
        x.sum().item()
        x.cpu().numpy()  # one copy: its numpy() is free
        torch.ones(2, device="cpu").tolist()  # a host tensor: free
        torch.tensor([1.0], device=x.device)  # host data to the device
    assert sum(count.calls.values()) == 3, dict(count.calls)
