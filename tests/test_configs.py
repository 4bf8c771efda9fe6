"""Every file in configs/ loads and instantiates."""
import glob
import os
import re
import sys

import pytest
import torch
from conftest import ROOT
from detectron2.config import LazyConfig, instantiate
from omegaconf import OmegaConf

from kddetr.distill import KDDETRLoss

CONFIGS = sorted(os.path.relpath(p, ROOT)
                 for p in glob.glob(os.path.join(ROOT, "configs", "**", "*.py"), recursive=True))


def test_configs_found():
    assert "configs/dino_r50.py" in CONFIGS and "configs/synthetic/dino_r50.py" in CONFIGS


@pytest.mark.parametrize("path", CONFIGS)
def test_config_instantiates(path):
    cfg = LazyConfig.load(os.path.join(ROOT, path))
    if "model" not in cfg:
        return  # helper modules (common/, models/dino.py) define functions only
    distill = "student" in cfg.model
    if distill:  # no teacher checkpoints on this machine
        cfg.model.teacher_weights, cfg.model.allow_untrained_teacher = "", True
    model = instantiate(cfg.model)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) > 0
    if "optimizer" in cfg:
        cfg.optimizer.params.model = model  # the teacher is frozen: only trainable parameters enter
        opt = instantiate(cfg.optimizer)
        lrs = {g["lr"] for g in opt.param_groups}
        assert max(lrs) == cfg.optimizer.lr
        sched = instantiate(cfg.lr_multiplier)
        decays = "Constant" not in str(cfg.lr_multiplier.scheduler._target_)  # RT-DETR's: constant after warm-up
        assert sched(0.0) > 0 and (sched(0.999) < sched(0.5) if decays else sched(0.999) == sched(0.5) == 1.0)
        assert cfg.train.max_iter > 0 and "enabled" in cfg.train.amp and "params" in cfg.train.clip_grad
    if "dataloader" in cfg:
        names = cfg.dataloader.train.dataset.names
        if str(names).startswith("synthetic"):
            batch = next(iter(instantiate(cfg.dataloader.train)))
            assert batch[0]["image"].dtype == torch.uint8 and batch[0]["instances"].has("gt_boxes")
        else:  # COCO is not on this machine: build the mapper only
            instantiate(cfg.dataloader.train.mapper)


def test_coco_configs_keep_detrex_defaults():
    cfg = LazyConfig.load(os.path.join(ROOT, "configs/dino_r50.py"))
    assert cfg.dataloader.train.dataset.names == "coco_2017_train"
    assert cfg.dataloader.test.dataset.names == "coco_2017_val"
    assert cfg.model.num_queries == 900 and cfg.model.dn_number == 100
    assert cfg.model.encoder.num_layers == 6 and cfg.model.decoder.num_layers == 6
    assert cfg.model.backbone.stages.norm == "FrozenBN"
    assert cfg.train.max_iter == 90000 and cfg.dataloader.train.total_batch_size == 16
    assert cfg.train.device == "cuda" and cfg.train.init_checkpoint.endswith("R-50.pkl")
    cfg.optimizer.params.model = instantiate(cfg.model)
    groups = instantiate(cfg.optimizer).param_groups
    assert {g["lr"] for g in groups} == {1e-4, 1e-5}  # backbone at 0.1x


def test_kd_pair_configs_say_where_weights_come_from():
    cfg = LazyConfig.load(os.path.join(ROOT, "configs/dino_r50_r18.py"))
    assert cfg.model.teacher.backbone.stages.depth == 50 and cfg.model.student.backbone.stages.depth == 18
    assert cfg.model.points[0].num == 900 and "TeacherQueries" in str(cfg.model.points[1]._target_)
    assert cfg.model.points[0].init == "normal" and cfg.model.points[0].resample
    assert cfg.model.loss.class_term == "sigmoid" and cfg.model.loss.normalization == "per_image"
    assert cfg.model.loss.temperature is None and cfg.model.loss.weights.cls is None  # the class term's defaults
    assert cfg.train.max_iter == 90000 and cfg.model.teacher_weights and cfg.train.init_checkpoint.endswith("R-18.pkl")
    cfg = LazyConfig.load(os.path.join(ROOT, "configs/dino_r101_r50.py"))
    assert cfg.model.teacher.backbone.stages.depth == 101 and cfg.model.student.backbone.stages.depth == 50
    assert cfg.train.init_checkpoint.endswith("R-50.pkl")


@pytest.mark.parametrize("path, queries, epochs_iters", [
    ("configs/dab_detr_r50.py", 300, 375000), ("configs/deformable_detr_r50.py", 300, 375000),
    ("configs/dab_deformable_detr_r50.py", 300, 375000), ("configs/conditional_detr_r101.py", 300, 375000),
])
def test_family_configs_keep_the_papers_settings(path, queries, epochs_iters):
    cfg = LazyConfig.load(os.path.join(ROOT, path))
    assert cfg.model.num_queries == queries and cfg.train.max_iter == epochs_iters
    assert cfg.dataloader.train.dataset.names == "coco_2017_train" and cfg.model.num_classes == 80
    assert cfg.model.encoder.num_layers == 6 and cfg.model.decoder.num_layers == 6


def test_every_pair_config_ships_the_layout_invariant_class_term_and_the_teacher_check():
    """No pair config, tool or the demo sets KD-DETR's normalisation or class term: the defaults (the sigmoid
    term per image, at the class term's temperature and weight) are what they use, and every pair checks its
    teacher."""
    from kddetr.distill import KDDETR

    paths = [p for p in glob.glob(os.path.join(ROOT, "configs", "**", "*.py"), recursive=True)
             if os.sep + "models" + os.sep not in p and os.sep + "common" + os.sep not in p]
    configs = {p: LazyConfig.load(p) for p in paths}
    pairs = [p for p, cfg in configs.items() if cfg.model.get("_target_") is KDDETR]
    assert len(pairs) >= 30
    for path in pairs:
        cfg = configs[path]
        assert dict(cfg.model.teacher_check) == {"images": 50, "min_ap": 1.0}, path
        if cfg.model.get("loss") is not None and cfg.model.loss._target_ is KDDETRLoss:
            loss = instantiate(cfg.model.loss)
            assert (loss.normalization, loss.class_term, loss.temperature) == ("per_image", "sigmoid", 1.0), path
            assert loss.weights["cls"] == 0.5, path
    for root in ("configs", "tools"):
        for path in glob.glob(os.path.join(ROOT, root, "**", "*.py"), recursive=True):
            if path.endswith(os.path.join("common", "kd_detr.py")):  # where the defaults are
                continue
            code = code_strings_and_keywords(open(path).read())
            for setting in ("normalization", "class_term", "model.loss.temperature", "model.loss.weights.cls"):
                assert not any(setting in c for c in code), (path, setting)


def code_strings_and_keywords(source: str):
    """The string constants (docstrings left out) and call keyword names of a Python source."""
    import ast

    tree = ast.parse(source)
    docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(
        n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(n) is not None}
    out = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
           and id(n) not in docs]
    return out + [k.arg for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords if k.arg]


def test_pair_configs_use_the_papers_point_counts_and_layer_compression():
    for path, general in (("configs/dab_detr_r50_r18.py", 300), ("configs/deformable_detr_r50_r18.py", 300),
                          ("configs/dab_deformable_detr_r50_r18.py", 300), ("configs/dino_r50_r18.py", 900)):
        assert LazyConfig.load(os.path.join(ROOT, path)).model.points[0].num == general, path
    for enc, dec in ((2, 6), (6, 4), (6, 2), (4, 4), (2, 2)):
        cfg = LazyConfig.load(os.path.join(ROOT, f"configs/layer_compression/dab_detr_r50_r18_enc{enc}_dec{dec}.py"))
        assert (cfg.model.student.encoder.num_layers, cfg.model.student.decoder.num_layers) == (enc, dec)
        assert (cfg.model.teacher.encoder.num_layers, cfg.model.teacher.decoder.num_layers) == (6, 6)
        assert cfg.model.loss.layers == "all"  # every student layer -> the teacher's last layer


def test_synthetic_layer_compression_students_are_shallower_than_their_teacher():
    """configs/synthetic/layer_compression/: each student cuts layers of the synthetic teacher's 2/3
    (not the paper's 6/6: a literal 6/2 student would have three times its encoder), its baseline
    has the same layers, and KD-DETR's class term is per image (the one that gains for DAB-DETR here)."""
    sys.path.insert(0, os.path.join(ROOT, "studies"))
    import benchmark_kd

    teacher = LazyConfig.load(os.path.join(ROOT, "configs/synthetic/dab_detr_r50.py")).model
    depth = (teacher.encoder.num_layers, teacher.decoder.num_layers)
    assert depth == (2, 3)
    pairs = [c for c, _ in benchmark_kd.COMPRESSED.values() if "_r50_r18_" in c]
    named = [tuple(int(n) for n in re.search(r"_enc(\d+)_dec(\d+)\.py$", c).groups()) for c in pairs]
    assert sorted(named) == [(1, 2), (2, 2)], pairs
    for path, student in zip(pairs, named):
        cfg = LazyConfig.load(os.path.join(ROOT, path))
        assert (cfg.model.student.encoder.num_layers, cfg.model.student.decoder.num_layers) == student, path
        assert student[0] <= depth[0] and student[1] <= depth[1] and student != depth, path
        assert (cfg.model.teacher.encoder.num_layers, cfg.model.teacher.decoder.num_layers) == depth
        assert cfg.model.loss.normalization == "per_image" and cfg.model.loss.layers == "all"
        alone = LazyConfig.load(os.path.join(ROOT, path.replace("_r50_r18_", "_r18_")))
        assert (alone.model.encoder.num_layers, alone.model.decoder.num_layers) == student, path
        # the baseline trains on the same schedule: only the teacher and the KD losses differ
        for key in ("train.max_iter", "train.init_checkpoint", "optimizer.lr", "optimizer.weight_decay",
                    "dataloader.train.total_batch_size", "lr_multiplier.scheduler.milestones"):
            assert OmegaConf.select(alone, key) == OmegaConf.select(cfg, key) is not None, (path, key)


def test_every_config_is_in_range_as_shipped():
    from kddetr.config import check_ranges, load_config

    paths = [p for p in glob.glob(os.path.join(ROOT, "configs", "**", "*.py"), recursive=True)
             if os.sep + "common" + os.sep not in p and os.sep + "models" + os.sep not in p]
    assert len(paths) > 40
    for path in paths:
        check_ranges(load_config(path), 8 if "synthetic" not in path else 1)
