"""Host syncs per training step, counted on the CPU by studies/count_syncs.py's ``SyncCount`` (what it counts is
in its docstring), against the budget of two: the copy of the step's matching costs to the host (scipy) and the
finite check before the optimizer step; a step that writes the metrics (every ``train.log_period``) one more."""
import os
import sys

import pytest
import torch
from conftest import ROOT, build_tiny_dino, synthetic_batch
from test_device import distillers

sys.path.insert(0, os.path.join(ROOT, "studies"))
from count_syncs import SyncCount, step_syncs  # noqa: E402

BUDGET = 2
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
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.0)
    calls, writing = step_syncs(DistillTrainer(model, [synthetic_batch(2)] * 3, opt, device="cpu", seed=3))
    assert sum(calls.values()) <= BUDGET, dict(calls)
    assert sum(writing.values()) <= BUDGET + 1, dict(writing)


def test_a_single_model_step_syncs_at_most_twice_and_a_writing_step_once_more():
    from kddetr.engine import Trainer

    model = build_tiny_dino().train()
    trainer = Trainer(model, [synthetic_batch(2)] * 3, torch.optim.AdamW(model.parameters(), lr=0.0), device="cpu")
    calls, writing = step_syncs(trainer)
    assert sum(calls.values()) <= BUDGET, dict(calls)
    assert sum(writing.values()) <= BUDGET + 1, dict(writing)
    assert "total_loss" in trainer.storage.histories()


def test_the_count_can_fail():
    with SyncCount() as count:
        x = torch.ones(3, device="cpu").mul(2)  # a device tensor (made by an op)
        x.sum().item()
        x.cpu().numpy()  # one copy: its numpy() is free
        torch.ones(2, device="cpu").tolist()  # a host tensor: free
        torch.tensor([1.0], device=x.device)  # host data to the device
    assert sum(count.calls.values()) == 3, dict(count.calls)
