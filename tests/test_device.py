"""Device discipline without a device: every tensor the package creates inside a training step names its
device, so the step runs unchanged on CUDA (a tensor created without ``device=`` lands on the CPU and works
here only because every consumer happens to move it). One step of every family and every distiller, and the
trainer's step, run under a ``TorchFunctionMode`` that records each factory call made from the package
without a ``device`` argument."""
import os
import sys

import pytest
import torch
from conftest import FAMILIES, ROOT, build_tiny, build_tiny_dino, build_tiny_kd, synthetic_batch
from torch.overrides import TorchFunctionMode

PACKAGE = os.path.join(ROOT, "projects", "KDDETR", "kddetr") + os.sep
sys.path.insert(0, os.path.join(ROOT, "studies"))
#: the factories whose result's device is the default (the CPU) unless ``device=`` is given (the sync count's too)
from count_syncs import FACTORIES  # noqa: E402


class FactoryWatch(TorchFunctionMode):
    """Records ``file:line factory`` of every factory call made from the package without ``device=``
    (``as_tensor`` / ``tensor`` of a tensor keep its device and are not counted)."""

    def __init__(self):
        super().__init__()
        self.found = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs and not (
                func in (torch.as_tensor, torch.tensor) and args and isinstance(args[0], torch.Tensor)):
            frame = sys._getframe(1)
            while frame is not None and not frame.f_code.co_filename.startswith(PACKAGE):
                frame = frame.f_back
            if frame is not None:
                where = os.path.relpath(frame.f_code.co_filename, ROOT)
                self.found.append(f"{where}:{frame.f_lineno} torch.{func.__name__}")
        return func(*args, **kwargs)


def watched(step) -> list:
    from detectron2.utils.events import EventStorage

    with EventStorage(0), FactoryWatch() as watch:
        step()
    return sorted(set(watch.found))


def tiny_rtdetr():
    from test_rtdetr import tiny_rtdetr as build

    return build()


@pytest.mark.parametrize("family", sorted(FAMILIES) + ["rtdetr"])
def test_a_training_step_of_every_family_names_its_devices(family):
    model = (tiny_rtdetr() if family == "rtdetr" else build_tiny(family)).train()
    batch = synthetic_batch(2)
    assert watched(lambda: sum(model(batch).values()).backward()) == []


def distillers():
    from kddetr.distill import (
        AssignmentDistillation,
        BaselineKDLoss,
        DETRDistill,
        FeatureDistillation,
        Inconsistent,
        InstanceDistillation,
        QueryContrast,
        SimilarForeground,
        SimilarGeneral,
    )

    def detrdistill():
        return DETRDistill(instance=InstanceDistillation(), feature=FeatureDistillation(),
                           query_contrast=QueryContrast(), assignment=AssignmentDistillation())

    def pair(**distillers):
        from kddetr.distill import KDDETR

        teacher = build_tiny_dino(embed_dim=48, ffn_dim=96, dec_layers=3)
        return KDDETR(teacher=teacher, student=build_tiny_dino(), allow_untrained_teacher=True, **distillers)

    return {
        "kd_detr": lambda: build_tiny_kd(),
        "detrdistill": lambda: pair(detrdistill=detrdistill()),
        "kd_detr_and_detrdistill": lambda: build_tiny_kd(detrdistill=detrdistill()),
        "inconsistent": lambda: pair(points=[Inconsistent()], loss=BaselineKDLoss()),
        "similar_general": lambda: pair(points=[SimilarGeneral()], loss=BaselineKDLoss()),
        "similar_foreground": lambda: pair(points=[SimilarForeground()], loss=BaselineKDLoss()),
    }


@pytest.mark.parametrize("name", ["kd_detr", "detrdistill", "kd_detr_and_detrdistill", "inconsistent",
                                  "similar_general", "similar_foreground"])
def test_a_trainer_step_of_every_distiller_names_its_devices(name):
    from kddetr.engine import DistillTrainer

    model = distillers()[name]().train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    trainer = DistillTrainer(model, [synthetic_batch(2)], opt, device="cpu", seed=3)
    trainer.iter = 0
    assert watched(trainer.run_step) == []


def test_the_trainer_step_without_gradients_names_its_devices():
    """A model none of whose parameters gets a gradient: the trainer's gradient norm is made, not computed."""
    from kddetr.engine import Trainer

    class Frozen(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))  # optimised, unused: no gradient
            self.u = torch.nn.Parameter(torch.ones(()))  # used, not optimised

        def forward(self, data):
            return {"loss_u": self.u * 1.0}

    model = Frozen()
    trainer = Trainer(model, [[{}]] * 2, torch.optim.SGD([model.w], lr=0.1), device="cpu")
    trainer.iter = 0
    assert watched(trainer.run_step) == []


def test_the_watch_can_fail():
    """A factory call without a device from the package is found (the tiny DINO's own step, with one injected)."""
    from kddetr.modeling.layers import box_ops

    def step():
        box_ops.cxcywh_to_xyxy(torch.rand(3, 4, device="cpu"))
        torch.zeros(2)  # from the test: not the package's
        build_tiny_dino  # noqa: B018

    assert watched(step) == []
    with FactoryWatch() as watch:
        exec(compile("import torch\nx = torch.zeros(3)\n", os.path.join(PACKAGE, "fake.py"), "exec"), {})
    assert watch.found == [os.path.join("projects", "KDDETR", "kddetr", "fake.py") + ":2 torch.zeros"]
