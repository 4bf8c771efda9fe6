"""Pretrained backbones for the synthetic data (kddetr.data.backbones): deterministic, cached, and
loadable into every synthetic config's ResNet through train.init_checkpoint."""
import glob
import os

import pytest
import torch
from conftest import ROOT
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.utils.file_io import PathManager

from kddetr.config import load_config
from kddetr.data.backbones import PretrainSettings, SyntheticBackboneHandler, pretrain

TINY = PretrainSettings(crop=32, steps=2, batch=4, max_images=3)


@pytest.fixture(scope="module")
def tiny_backbones(tmp_path_factory):
    from kddetr.data.synthetic import ensure_generated

    root = ensure_generated()
    out = tmp_path_factory.mktemp("backbones")
    return {d: pretrain(d, str(out / f"R-{d}.pth"), TINY, root=root) for d in (18, 50)}


def test_pretraining_is_deterministic(tiny_backbones, tmp_path):
    from kddetr.data.synthetic import ensure_generated

    again = pretrain(18, str(tmp_path / "R-18.pth"), TINY, root=ensure_generated())
    a = torch.load(tiny_backbones[18], weights_only=False)["model"]
    b = torch.load(again, weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("config", sorted(glob.glob(os.path.join(ROOT, "configs/synthetic/**/*.py"), recursive=True)))
def test_backbone_checkpoint_loads_into_every_synthetic_config(config, tiny_backbones):
    """Every ResNet of every synthetic config (teacher and student) takes every tensor of the file."""
    cfg = load_config(config, [])
    models = [cfg.model.teacher, cfg.model.student] if "student" in cfg.model else [cfg.model]
    for model_cfg in models:
        depth = model_cfg.backbone.stages.depth
        assert depth in tiny_backbones, f"no R-{depth} in this test"
        holder = torch.nn.Module()
        holder.backbone = instantiate(model_cfg.backbone)  # the detector's attribute name
        state = torch.load(tiny_backbones[depth], weights_only=False)["model"]
        expected = holder.state_dict()
        # (single-scale models stop at res4: the file's res5 is then left unused, as ImageNet's fc is)
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
