"""Shared fixtures: a tiny DINO built from the project's own config function, synthetic batches."""
import importlib
import os
import shutil
import sys
import tempfile
import warnings

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)


#: the tests' stand-in for the synthetic pretrained backbones (minutes at the configs' settings):
#: a short pretraining on a few hundred training images, enough to beat random weights
SHORT_PRETRAINING = dict(steps=40, batch=32, max_images=300)
#: (folder of the session's pretrainings, the $KDDETR_SYNTHETIC_BACKBONES it replaced)
_BACKBONES = pytest.StashKey()


def pytest_configure(config):
    """Before any test (and, under pytest-xdist, once in the controller before its workers start):
    ``synthetic-backbone://R-18`` and ``R-50``, and their ``-vd`` (every synthetic config's ``train.init_checkpoint``)
    resolve to short pretrainings for the whole session, train_net.py subprocesses and xdist workers
    included (they inherit $KDDETR_SYNTHETIC_BACKBONES): CI does not build the full ones. With
    ``-n 2`` (``make test``) every worker and its subprocesses run torch on one thread, so the two
    workers share the two cores instead of oversubscribing them."""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller prepared the environment
        return
    from kddetr.data.backbones import CACHE_ENV, PretrainSettings, backbone_name, pretrain
    from kddetr.data.synthetic import ensure_generated

    folder = tempfile.mkdtemp(prefix="kddetr_test_backbones_")
    root = ensure_generated()
    for depth, variant in ((18, ""), (50, ""), (18, "vd"), (50, "vd")):
        pretrain(depth, os.path.join(folder, f"{backbone_name(depth, variant)}.pth"),
                 PretrainSettings(**SHORT_PRETRAINING), root=root, variant=variant)
    config.stash[_BACKBONES] = (folder, os.environ.get(CACHE_ENV))
    os.environ[CACHE_ENV] = folder
    workers = getattr(config.option, "numprocesses", None)  # pytest-xdist's -n, resolved to a number
    if isinstance(workers, int) and workers > 1:
        os.environ["OMP_NUM_THREADS"] = "1"


def pytest_unconfigure(config):
    if _BACKBONES not in config.stash:
        return
    from kddetr.data.backbones import CACHE_ENV

    folder, previous = config.stash[_BACKBONES]
    shutil.rmtree(folder, ignore_errors=True)
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture(scope="session")
def synthetic_backbones():
    """{depth: path} of the session's short pretrainings (made in pytest_configure)."""
    from kddetr.data.backbones import CACHE_ENV

    return {d: os.path.join(os.environ[CACHE_ENV], f"R-{d}.pth") for d in (18, 50)}


def load_config_module(relpath: str):
    """Import a helper module of configs/ (e.g. ``models/dino.py``) as ``configs.models.dino``."""
    return importlib.import_module("configs." + relpath[:-3].replace("/", "."))


TINY = dict(depth=18, num_classes=6, embed_dim=32, num_heads=4, ffn_dim=64, enc_layers=1, dec_layers=2,
            num_queries=30, dn_number=6, norm="GN", freeze_at=0, norm_groups=8)


def build_tiny_dino(**overrides):
    from detectron2.config import instantiate

    torch.manual_seed(0)
    cfg = load_config_module("models/dino.py").dino(**{**TINY, **overrides})
    return instantiate(cfg)


# family -> (config module, builder, extra options); single-scale models read res4 on 64 px images
FAMILIES = {
    "dino": ("models/dino.py", "dino", dict(dn_number=6, norm_groups=8)),
    "deformable_detr": ("models/deformable_detr.py", "deformable_detr", dict(norm_groups=8)),
    "deformable_detr_refine": ("models/deformable_detr.py", "deformable_detr",
                               dict(norm_groups=8, with_box_refine=True)),
    "deformable_detr_two_stage": ("models/deformable_detr.py", "deformable_detr",
                                  dict(norm_groups=8, with_box_refine=True, two_stage=True)),
    "dab_deformable_detr": ("models/deformable_detr.py", "dab_deformable_detr", dict(norm_groups=8)),
    "dab_detr": ("models/dab_detr.py", "dab_detr", dict(in_feature="res4")),
    "conditional_detr": ("models/dab_detr.py", "conditional_detr", dict(in_feature="res4")),
}


def build_tiny(family: str, **overrides):
    """A tiny detector of ``family`` (see FAMILIES) from the project's own config functions."""
    from detectron2.config import instantiate

    module, fn, extra = FAMILIES[family]
    sizes = {k: v for k, v in TINY.items() if k not in ("dn_number", "norm_groups")}
    torch.manual_seed(0)
    return instantiate(getattr(load_config_module(module), fn)(**{**sizes, **extra, **overrides}))


def synthetic_batch(num_images: int = 2, seed: int = 0, size: int = 64, with_targets: bool = True):
    """Detectron2-style inputs rendered by the synthetic generator (no files involved)."""
    from detectron2.structures import Boxes, Instances

    from kddetr.data.synthetic import render_image

    rng = np.random.default_rng(seed)
    batch = []
    while len(batch) < num_images:
        img, objects = render_image(rng, size)
        if with_targets and not objects:
            continue
        d = {"image": torch.as_tensor(img.transpose(2, 0, 1).copy()), "height": size, "width": size}
        if with_targets:
            inst = Instances((size, size))
            xywh = torch.tensor([o["bbox"] for o in objects], dtype=torch.float32)
            inst.gt_boxes = Boxes(torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1))
            inst.gt_classes = torch.tensor([o["category"] for o in objects])
            d["instances"] = inst
        batch.append(d)
    return batch


def assert_eval_instances(model) -> None:
    """Eval forward of ``model`` on two images (one rescaled): Instances of the original size,
    top-k detections with boxes inside the image, scores in [0, 1] and valid classes."""
    model.eval()
    batch = synthetic_batch(2, with_targets=False)
    batch[1]["height"], batch[1]["width"] = 96, 128  # rescaled to the original size
    with torch.no_grad():
        out = model(batch)
    for inputs, res in zip(batch, out):
        inst = res["instances"]
        assert inst.image_size == (inputs["height"], inputs["width"])
        assert len(inst) == min(model.select_box_nums_for_evaluation, model.num_queries * model.num_classes)
        b = inst.pred_boxes.tensor
        assert (b >= 0).all()
        assert (b[:, 2] <= inputs["width"]).all() and (b[:, 3] <= inputs["height"]).all()
        assert ((inst.scores >= 0) & (inst.scores <= 1)).all()
        assert inst.pred_classes.max() < model.num_classes


@pytest.fixture
def tiny_dino():
    return build_tiny_dino()


def build_tiny_kd(points=None, student_overrides=None, teacher_weights="", **kwargs):
    """A tiny KDDETR: tiny DINO teacher (wider) and student, untrained unless weights are given."""
    from kddetr.distill import KDDETR, GeneralPoints, KDDETRLoss, TeacherQueries

    teacher = build_tiny_dino(embed_dim=48, ffn_dim=96, dec_layers=3)
    student = build_tiny_dino(**(student_overrides or {}))
    points = points if points is not None else [GeneralPoints(num=12), TeacherQueries()]
    return KDDETR(teacher=teacher, student=student, points=points, loss=KDDETRLoss(),
                  teacher_weights=teacher_weights, allow_untrained_teacher=not teacher_weights, **kwargs)


def overfit(model, batch, iters: int = 100, lr: float = 1e-3):
    """Train ``model`` on one fixed ``batch`` (AdamW, gradient clipping 0.1); returns the mean
    total loss of the first five steps and the last step's."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    window, last = [], None
    for _ in range(iters):
        total = sum(model(batch).values())
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        opt.step()
        if len(window) < 5:
            window.append(total.item())
        last = total.item()
    return sum(window) / len(window), last


def randomise_batchnorms(module: torch.nn.Module, seed=None) -> torch.nn.Module:
    """Random BatchNorm statistics and affine terms (fresh ones are 0 / 1, which would hide a wrong fold or
    a wrong name mapping), from ``seed`` if given, else the current torch RNG; ``module`` in eval mode."""
    if seed is not None:
        torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return module.eval()
