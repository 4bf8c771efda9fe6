"""What the single-scale families (DAB-DETR, Conditional DETR) feed their encoder: detrex's bare
1x1 projection of res5 in the COCO configs; res3 and a GroupNorm after the projection in the
synthetic configs (docs/RESULTS.md, "Why DAB-DETR and Conditional DETR learn slowly here")."""
import os

import pytest
import torch
from conftest import ROOT, build_tiny
from detectron2.config import LazyConfig
from detectron2.structures import ImageList
from torch import nn

SINGLE_SCALE = ("dab_detr", "conditional_detr")


@pytest.mark.parametrize("family", SINGLE_SCALE)
def test_coco_configs_keep_detrexs_bare_projection_of_res5(family):
    cfg = LazyConfig.load(os.path.join(ROOT, f"configs/{family}_r50.py"))
    assert cfg.model.in_feature == "res5" and cfg.model.input_norm_groups == 0
    model = build_tiny(family)
    assert isinstance(model.input_norm, nn.Identity)
    assert not any(k.startswith("input_norm.") for k in model.state_dict())  # detrex checkpoints load as they are


@pytest.mark.parametrize("family", SINGLE_SCALE)
@pytest.mark.parametrize("config", ["{f}_r50.py", "{f}_r18.py", "{f}_r50_r18.py"])
def test_synthetic_configs_read_res3_through_a_group_norm(family, config):
    cfg = LazyConfig.load(os.path.join(ROOT, "configs", "synthetic", config.format(f=family)))
    models = [cfg.model.teacher, cfg.model.student] if "student" in cfg.model else [cfg.model]
    for m in models:
        depth = m.backbone.stages.depth
        assert m.in_feature == "res3" and list(m.backbone.out_features) == ["res3"]
        assert m.in_channels == (512 if depth == 50 else 128) and m.input_norm_groups == 32


@pytest.mark.parametrize("family", SINGLE_SCALE)
def test_the_group_norm_makes_the_encoder_input_independent_of_the_feature_scale(family):
    """The synthetic backbones' features grow during training (trainable BN); with the GroupNorm the
    encoder sees the same input whatever their scale, without it the input scales with them."""
    torch.manual_seed(0)
    images = ImageList(torch.rand(2, 3, 64, 64) * 255, [(64, 64), (64, 64)])
    mask = torch.zeros(2, 64, 64, dtype=torch.bool)
    for groups, invariant in ((8, True), (0, False)):
        model = build_tiny(family, input_norm_groups=groups).eval()
        nn.init.zeros_(model.input_proj.bias)  # so that x10 features give a x10 projection
        inputs = []
        model.encoder.register_forward_pre_hook(lambda mod, args: inputs.append(args[0]))
        for scale in (1.0, 10.0):  # the backbone's features as they are, then x10
            hook = model.backbone.register_forward_hook(lambda mod, args, out, scale=scale:
                                                        {k: v * scale for k, v in out.items()})
            with torch.no_grad():
                model.encode(images, mask)
            hook.remove()
        same = torch.allclose(inputs[0], inputs[1], atol=1e-4, rtol=1e-3)
        assert same == invariant, (family, groups)
