"""Step schedules in the detrex convention: epochs of COCO at batch 16 (7500 iterations)."""
from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import ConstantParamScheduler, MultiStepParamScheduler

COCO_ITERS_PER_EPOCH = 7500


def step_schedule(*, max_iter, decay_iter, warmup_iter=0, warmup_factor=0.001):
    """lr x1 until ``decay_iter``, then x0.1; optional linear warm-up."""
    return L(WarmupParamScheduler)(
        scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1], milestones=[decay_iter], num_updates=max_iter),
        warmup_length=warmup_iter / max_iter,
        warmup_method="linear",
        warmup_factor=warmup_factor,
    )


def coco_schedule(*, epochs, decay_epochs, warmup_iter=0):
    return step_schedule(max_iter=epochs * COCO_ITERS_PER_EPOCH, decay_iter=decay_epochs * COCO_ITERS_PER_EPOCH,
                         warmup_iter=warmup_iter)


def schedule_12ep():
    return coco_schedule(epochs=12, decay_epochs=11)


def schedule_24ep():
    return coco_schedule(epochs=24, decay_epochs=20)


def schedule_36ep():
    return coco_schedule(epochs=36, decay_epochs=30)


def schedule_50ep():
    return coco_schedule(epochs=50, decay_epochs=40)


def synthetic_schedule(max_iter):
    """The synthetic configs' schedule at any length: warm-up over the first 10 %, lr x0.1 at 85 %."""
    return step_schedule(max_iter=max_iter, decay_iter=int(max_iter * 0.85), warmup_iter=max_iter // 10)


def rtdetr_schedule(*, epochs, warmup_iter=2000):
    """RT-DETRv2's: a linear warm-up over 2000 iterations, then a constant lr (their step is at epoch 1000, past
    every schedule they train)."""
    max_iter = epochs * COCO_ITERS_PER_EPOCH
    return L(WarmupParamScheduler)(scheduler=L(ConstantParamScheduler)(value=1.0), warmup_length=warmup_iter / max_iter,
                                   warmup_method="linear", warmup_factor=0.001)
