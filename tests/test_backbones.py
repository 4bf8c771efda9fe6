"""Pretrained backbones for the synthetic data (kddetr.data.backbones): deterministic, cached, and
loadable into every synthetic config's ResNet through train.init_checkpoint."""
import dataclasses
import glob
import os

import pytest
import torch
from conftest import ROOT
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.utils.file_io import PathManager

from kddetr.config import load_config
from kddetr.data.backbones import PretrainSettings, SyntheticBackboneHandler, backbone_name, pretrain

TINY = PretrainSettings(crop=32, steps=2, batch=4, max_images=3)


@pytest.fixture(scope="module")
def tiny_backbones(tmp_path_factory):
    from kddetr.data.synthetic import ensure_generated

    root = ensure_generated()
    out = tmp_path_factory.mktemp("backbones")
    return {backbone_name(d, v): pretrain(d, str(out / f"{backbone_name(d, v)}.pth"), TINY, root=root, variant=v)
            for d in (18, 50) for v in ("", "vd")}


def backbone_of(model_cfg) -> str:
    """``R-<depth>`` (Detectron2's ResNet) or ``R-<depth>-vd`` (ResNet-vd) of a model config."""
    backbone = model_cfg.backbone
    return backbone_name(backbone.stages.depth) if "stages" in backbone else backbone_name(backbone.depth, "vd")


def test_pretraining_is_deterministic(tiny_backbones, tmp_path):
    from kddetr.data.synthetic import ensure_generated

    again = pretrain(18, str(tmp_path / "R-18.pth"), TINY, root=ensure_generated())
    a = torch.load(tiny_backbones["R-18"], weights_only=False)["model"]
    b = torch.load(again, weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("config", sorted(glob.glob(os.path.join(ROOT, "configs/synthetic/**/*.py"), recursive=True)))
def test_backbone_checkpoint_loads_into_every_synthetic_config(config, tiny_backbones):
    """Every ResNet of every synthetic config (teacher and student) takes every tensor of the file."""
    cfg = load_config(config, [])
    models = [cfg.model.teacher, cfg.model.student] if "student" in cfg.model else [cfg.model]
    for model_cfg in models:
        depth = backbone_of(model_cfg)
        assert depth in tiny_backbones, f"no {depth} in this test"
        holder = torch.nn.Module()
        holder.backbone = instantiate(model_cfg.backbone)  # the detector's attribute name
        state = torch.load(tiny_backbones[depth], weights_only=False)["model"]
        expected = holder.state_dict()
        # (single-scale models stop at res3: the file's res4 and res5 are then left unused, as ImageNet's fc is)
        assert set(expected) <= set(state), sorted(set(expected) - set(state))[:5]
        assert all(state[k].shape == v.shape for k, v in expected.items())
        # and Detectron2's checkpointer (what train.init_checkpoint uses) loads them all
        DetectionCheckpointer(holder).load(tiny_backbones[depth])
        assert all(torch.equal(holder.state_dict()[k], state[k]) for k in expected)


def test_the_scheme_names_only_the_four_depths():
    handler = SyntheticBackboneHandler()
    with pytest.raises(ValueError, match="R-18, R-34, R-50 or R-101"):
        handler._get_local_path("synthetic-backbone://R-152")
    assert "synthetic-backbone://" in PathManager._path_handlers


SYNTHETIC_CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs/synthetic/**/*.py"), recursive=True))


def trained_backbone(cfg) -> str:
    """The backbone (``R-<depth>[-vd]``) of the model a config trains (a distillation config: its student)."""
    return backbone_of(cfg.model.student if "student" in cfg.model else cfg.model)


@pytest.mark.parametrize("config", SYNTHETIC_CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_synthetic_config_starts_from_the_pretrained_backbone_of_its_depth(config):
    """As the COCO configs start from ImageNet's R-<depth>.pkl (a student from its own depth's)."""
    cfg = load_config(config, [])
    assert cfg.train.init_checkpoint == f"synthetic-backbone://{trained_backbone(cfg)}"


def test_the_cache_folder_can_be_moved(monkeypatch, tmp_path, synthetic_backbones):
    from kddetr.data.backbones import CACHE_ENV, cached_path

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cached_path(50) == str(tmp_path / "R-50.pth")
    monkeypatch.delenv(CACHE_ENV)
    assert cached_path(50).endswith(os.path.join("kddetr_synthetic_v1", "backbones", "R-50.pth"))


def _probe_accuracy(backbone: torch.nn.Module, settings: PretrainSettings, root: str) -> float:
    """A linear probe on the frozen backbone's pooled res5 features: trained on the crops of the
    first ``max_images`` validation images, scored on the crops of the next ones (images the
    pretraining never saw)."""
    from kddetr.data.backbones import PIXEL_MEAN, PIXEL_STD, crops

    mean, std = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
    images, labels = crops(root, dataclasses.replace(settings, max_images=2 * settings.max_images), split="val")
    n_train = len(crops(root, settings, split="val")[1])
    backbone.eval()
    with torch.no_grad():
        x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() - mean) / std
        feats = torch.cat([backbone(x[i:i + 256])["res5"].mean((2, 3)) for i in range(0, len(x), 256)])
    feats = (feats - feats[:n_train].mean(0)) / (feats[:n_train].std(0) + 1e-6)
    y = torch.from_numpy(labels)
    torch.manual_seed(0)
    head = torch.nn.Linear(feats.shape[1], int(y.max()) + 1)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(200):
        loss = torch.nn.functional.cross_entropy(head(feats[:n_train]), y[:n_train])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float((head(feats[n_train:]).argmax(1) == y[n_train:]).float().mean())


def test_the_pretrained_backbone_carries_what_it_learned_into_a_detector(synthetic_backbones):
    """The file, loaded into a synthetic config's ResNet through train.init_checkpoint's
    checkpointer, gives features that tell the shape classes and background apart on crops of
    images it was not trained on better than the same ResNet at random.

    (Not the loss of a detector after a few steps: measured with the configs' pretraining, the
    DINO R18's training loss matches the one from scratch for about 120 iterations; the gain
    shows later, in AP, docs/RESULTS.md "Pretrained synthetic backbones".)"""
    from conftest import SHORT_PRETRAINING

    from kddetr.data.synthetic import ensure_generated

    cfg = load_config(os.path.join(ROOT, "configs/synthetic/dino_r18.py"), [])
    settings = PretrainSettings(**{**SHORT_PRETRAINING, "max_images": 100})
    accuracy = {}
    for start in ("random", "pretrained"):
        torch.manual_seed(0)
        holder = torch.nn.Module()
        holder.backbone = instantiate(cfg.model.backbone)
        if start == "pretrained":
            DetectionCheckpointer(holder).load(synthetic_backbones[18])
        accuracy[start] = _probe_accuracy(holder.backbone, settings, ensure_generated())
    # random conv features already separate coloured shapes well (about 80 % here): the
    # pretrained ones must cut the probe's error by a quarter at least
    assert 1 - accuracy["pretrained"] < 0.75 * (1 - accuracy["random"]), accuracy
