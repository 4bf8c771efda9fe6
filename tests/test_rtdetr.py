"""RT-DETR's parts: the ResNet-vd backbone and the hybrid encoder (AIFI + CCFM, RepVGG re-parameterisation)."""
import pytest
import torch
from conftest import randomise_batchnorms
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec

from kddetr.modeling.hybrid_encoder import CSPRepLayer, HybridEncoder, RepVggBlock, fuse_repvgg, sincos_2d
from kddetr.modeling.resnet_vd import BasicBlockVd, BottleneckVd, ResNetVd


@pytest.mark.parametrize("depth,channels", [(18, (128, 256, 512)), (34, (128, 256, 512)),
                                            (50, (512, 1024, 2048)), (101, (512, 1024, 2048))])
def test_resnet_vd_levels(depth, channels):
    """Strides 8 / 16 / 32 and the channels RT-DETR's encoder expects, on an input that is not a multiple of 32."""
    net = ResNetVd(depth, norm="BN").eval()
    shapes = net.output_shape()
    assert [shapes[f].channels for f in ("res3", "res4", "res5")] == list(channels)
    assert [shapes[f].stride for f in ("res3", "res4", "res5")] == [8, 16, 32]
    with torch.no_grad():
        out = net(torch.randn(1, 3, 96, 160))
    assert [tuple(out[f].shape[1:]) for f in ("res3", "res4", "res5")] == [
        (channels[0], 12, 20), (channels[1], 6, 10), (channels[2], 3, 5)]
    assert len(net.res4) == {18: 2, 34: 6, 50: 6, 101: 23}[depth]


def test_resnet_vd_is_the_d_variant():
    """Deep stem (32, 32, 64), the stride of a bottleneck in its 3x3, the average-pool shortcut when a block
    downsamples, and a projection on the first block of every stage, res2's included."""
    r50 = ResNetVd(50)
    assert [c.weight.shape[0] for c in (r50.stem.conv1, r50.stem.conv2, r50.stem.conv3)] == [32, 32, 64]
    assert r50.stem.conv1.stride == (2, 2) and r50.stem.conv2.stride == (1, 1)
    first = r50.res3[0]
    assert isinstance(first, BottleneckVd)
    assert first.conv1.stride == (1, 1) and first.conv2.stride == (2, 2)
    assert isinstance(first.shortcut.pool, torch.nn.AvgPool2d) and first.shortcut.conv.stride == (1, 1)
    assert r50.res2[0].shortcut is not None and not isinstance(r50.res2[0].shortcut.pool, torch.nn.AvgPool2d)
    assert all(b.shortcut is None for b in r50.res3[1:])
    r18 = ResNetVd(18)
    assert isinstance(r18.res2[0], BasicBlockVd) and r18.res2[0].shortcut is not None


def test_resnet_vd_freezes_as_detectron2():
    net = ResNetVd(18, norm="BN", freeze_at=2)
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert not any(p.requires_grad for p in net.res2.parameters())
    assert all(p.requires_grad for p in net.res3.parameters())
    assert isinstance(net.res2[0].conv1.norm, FrozenBatchNorm2d) and isinstance(net.res3[0].conv1.norm,
                                                                                  torch.nn.BatchNorm2d)


def test_a_fused_repvgg_block_computes_the_same():
    block = randomise_batchnorms(RepVggBlock(16), seed=0)
    x = torch.randn(2, 16, 10, 12)
    with torch.no_grad():
        before = block(x)
        block.fuse()
        after = block(x)
    assert block.fused is not None and block.conv3 is None
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(before, torch.nn.functional.silu(x), atol=1e-2)  # the block does something


def test_the_fused_hybrid_encoder_computes_the_same():
    """Every RepVGG block of the encoder folded: the same outputs at every level, in eval mode."""
    shapes = {"res3": ShapeSpec(channels=32), "res4": ShapeSpec(channels=48), "res5": ShapeSpec(channels=64)}
    enc = randomise_batchnorms(HybridEncoder(shapes, embed_dim=32, num_heads=4, ffn_dim=64, expansion=0.5), seed=0)
    feats = {"res3": torch.randn(2, 32, 16, 16), "res4": torch.randn(2, 48, 8, 8), "res5": torch.randn(2, 64, 4, 4)}
    with torch.no_grad():
        before = enc(feats)
        fuse_repvgg(enc)
        after = enc(feats)
    assert [tuple(o.shape) for o in after] == [(2, 32, 16, 16), (2, 32, 8, 8), (2, 32, 4, 4)]
    assert sum(isinstance(m, RepVggBlock) and m.fused is not None for m in enc.modules()) == 4 * 3
    for a, b in zip(after, before):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_csp_layer_width():
    """``expansion`` sets the hidden width; a third 1x1 convolution maps it back only when it differs."""
    assert isinstance(CSPRepLayer(64, 32, expansion=1.0).conv3, torch.nn.Identity)
    half = CSPRepLayer(64, 32, expansion=0.5)
    assert half.conv1.weight.shape[0] == 16 and half.conv3.weight.shape == (32, 16, 1, 1)


@pytest.mark.parametrize("h,w", [(4, 4), (3, 5)])
def test_sincos_position_embedding_is_rtdetrs(h, w):
    """RT-DETR's construction, written out: a ``w x h`` grid (``meshgrid(.., indexing="ij")`` of the width and
    height ranges) flattened, sin / cos of both coordinates at ``temperature^(-i / (D / 4))``."""
    dim = 16
    gw, gh = torch.meshgrid(torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32),
                            indexing="ij")
    omega = 1.0 / (10000.0 ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4)))
    ow, oh = gw.flatten()[:, None] * omega[None], gh.flatten()[:, None] * omega[None]
    expected = torch.cat([ow.sin(), ow.cos(), oh.sin(), oh.cos()], dim=1)[None]
    torch.testing.assert_close(sincos_2d(h, w, dim), expected)


def test_aifi_attends_to_image_tokens_only():
    """With a padding mask, what lies in the padding does not change the image's tokens."""
    shapes = {"res3": ShapeSpec(channels=8), "res4": ShapeSpec(channels=8), "res5": ShapeSpec(channels=8)}
    enc = HybridEncoder(shapes, embed_dim=16, num_heads=2, ffn_dim=32, depth_mult=1 / 3).eval()
    feats = {"res3": torch.randn(1, 8, 16, 16), "res4": torch.randn(1, 8, 8, 8), "res5": torch.randn(1, 8, 4, 4)}
    masks = [torch.zeros(1, s, s, dtype=torch.bool) for s in (16, 8, 4)]
    masks[2][:, :, 3:] = True  # the last column of the stride-32 level is padding
    other = {k: v.clone() for k, v in feats.items()}
    other["res5"][..., 3:] += 5.0
    with torch.no_grad():
        a = enc.aifi[0](enc.input_proj[2](feats["res5"]).flatten(2).transpose(1, 2), sincos_2d(4, 4, 16),
                        masks[2].flatten(1))
        b = enc.aifi[0](enc.input_proj[2](other["res5"]).flatten(2).transpose(1, 2), sincos_2d(4, 4, 16),
                        masks[2].flatten(1))
        image = ~masks[2].flatten(1)[0]
        torch.testing.assert_close(a[0, image], b[0, image])
        assert len(enc(feats, masks)) == 3


def tiny_rtdetr(**overrides):
    from detectron2.config import instantiate

    from configs.models.rtdetr import synthetic_rtdetr

    torch.manual_seed(0)
    sizes = dict(embed_dim=32, enc_ffn_dim=64, ffn_dim=64, num_heads=4, dec_layers=2, num_queries=20, dn_number=6)
    return instantiate(synthetic_rtdetr(depth=18, **{**sizes, **overrides}))


def test_rtdetr_trains_and_detects_through_the_seam():
    from conftest import synthetic_batch

    from kddetr.modeling.seam import missing_seam_members

    model = tiny_rtdetr().train()
    assert missing_seam_members(model) == []
    losses = model(synthetic_batch(2, size=64))
    assert {"loss_class", "loss_bbox_0", "loss_giou_dn", "loss_class_enc"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for part in (model.backbone.res3, model.encoder.fpn_blocks, model.encoder.aifi, model.decoder.ref_point_head,
                 model.enc_class_head, model.denoising):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), part
    model.eval()
    with torch.no_grad():
        out = model(synthetic_batch(2, size=64, with_targets=False))
    assert len(out) == 2 and len(out[0]["instances"]) == 20 * 6  # every (query, class) of 20 queries, 6 classes


def test_varifocal_targets_are_the_matched_ious():
    """One query matched to its ground truth at IoU 1 and one at IoU 1/4: the BCE targets at the true class are
    those IoUs, weighted by them; every other entry is a 0 target weighted by alpha * p^gamma."""
    import torch.nn.functional as F

    from kddetr.modeling.criterion import SetCriterion
    from kddetr.modeling.matcher import HungarianMatcher

    crit = SetCriterion(2, HungarianMatcher(), alpha=0.75, gamma=2.0, class_loss="varifocal")
    logits = torch.tensor([[[0.5, -1.0], [0.2, 0.3], [-2.0, 1.0]]])
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.4, 0.4], [0.2, 0.2, 0.1, 0.1]]])
    targets = [{"labels": torch.tensor([0, 1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]])}]
    indices = [(torch.tensor([0, 1]), torch.tensor([0, 1]))]
    got = crit.matched_losses(logits, boxes, targets, indices, torch.tensor(2.0))["loss_class"]
    score = torch.zeros(1, 3, 2)
    score[0, 0, 0], score[0, 1, 1] = 1.0, 0.25
    positive = torch.zeros(1, 3, 2)
    positive[0, 0, 0] = positive[0, 1, 1] = 1.0
    weight = 0.75 * logits.sigmoid() ** 2 * (1 - positive) + score
    expected = F.binary_cross_entropy_with_logits(logits, score, weight=weight, reduction="sum") / 2
    torch.testing.assert_close(got, expected)


def test_a_dino_teacher_distils_into_rtdetr():
    """Four levels and 30 queries against three and 20, another decoder: KD-DETR's points are decoded by both at
    the teacher's reference boxes, and DETRDistill's instance and assignment terms pair them, with no family
    branch in the distillers."""
    from conftest import build_tiny_dino, synthetic_batch

    from kddetr.distill import (
        KDDETR,
        AssignmentDistillation,
        DETRDistill,
        GeneralPoints,
        InstanceDistillation,
        KDDETRLoss,
        TeacherQueries,
    )

    teacher = build_tiny_dino(embed_dim=48, ffn_dim=96, dec_layers=3)
    model = KDDETR(teacher=teacher, student=tiny_rtdetr(), points=[GeneralPoints(num=12), TeacherQueries()],
                   loss=KDDETRLoss(), detrdistill=DETRDistill(instance=InstanceDistillation(),
                                                              assignment=AssignmentDistillation()),
                   allow_untrained_teacher=True).train()
    batch = synthetic_batch(2, size=64)
    step = model.teacher_predictions(batch, model.sample_points(torch.Generator().manual_seed(0)))
    _, outputs, _, _ = model.student_step(batch, step)
    for group in ("kd_general", "kd_specific", "tqa"):
        assert outputs[group].boxes.shape[:3] == (2, 2, step.queries.get(group, step.default).num)
    losses = model(batch)
    assert {"loss_kd_cls", "loss_pid_cls", "loss_class_tqa"} <= set(losses)
    sum(losses.values()).backward()
    assert model.student.encoder.input_proj[0].weight.grad.abs().sum() > 0


# Names read from RT-DETR's modules (PResNet vd, HybridEncoder v2, RTDETRTransformerv2): if a rule maps to
# anything else, these are missing from the renamed dict.
RTDETR_NAMES = [
    "backbone.conv1.conv1_1.conv.weight", "backbone.conv1.conv1_3.norm.running_var",
    "backbone.res_layers.0.blocks.0.short.conv.weight", "backbone.res_layers.1.blocks.0.short.conv.conv.weight",
    "backbone.res_layers.1.blocks.0.short.conv.norm.bias", "backbone.res_layers.2.blocks.1.branch2b.conv.weight",
    "encoder.input_proj.2.conv.weight", "encoder.input_proj.0.norm.weight",
    "encoder.encoder.0.layers.0.self_attn.in_proj_weight", "encoder.encoder.0.layers.0.linear2.bias",
    "encoder.encoder.0.layers.0.norm2.weight", "encoder.lateral_convs.1.conv.weight",
    "encoder.fpn_blocks.0.conv1.conv.weight", "encoder.fpn_blocks.0.bottlenecks.2.conv1.norm.weight",
    "encoder.pan_blocks.1.bottlenecks.0.conv2.conv.weight", "encoder.pan_blocks.1.conv3.norm.bias",
    "encoder.downsample_convs.0.norm.running_mean", "decoder.input_proj.1.conv.weight",
    "decoder.decoder.layers.1.cross_attn.sampling_offsets.weight", "decoder.decoder.layers.0.norm3.weight",
    "decoder.decoder.layers.0.linear1.weight", "decoder.query_pos_head.layers.1.bias",
    "decoder.enc_output.proj.weight", "decoder.enc_output.norm.bias", "decoder.enc_score_head.weight",
    "decoder.enc_bbox_head.layers.2.weight", "decoder.dec_score_head.1.bias", "decoder.dec_bbox_head.0.layers.0.weight",
    "decoder.denoising_class_embed.weight",
]


def test_rtdetr_checkpoints_convert_both_ways():
    """Our tensors under RT-DETR's names (their padding class row and computed buffers added) convert back to
    the same tensors, every one found, nothing of theirs left but what we compute."""
    from kddetr.convert_rtdetr import convert_rtdetr_state_dict, rtdetr_model_state, rtdetr_name

    model = tiny_rtdetr()
    theirs = {rtdetr_name(k, model): v.clone() for k, v in model.state_dict().items()}
    assert set(RTDETR_NAMES) <= set(theirs), sorted(set(RTDETR_NAMES) - set(theirs))
    assert len(theirs) == len(model.state_dict())  # one name each
    label = theirs["decoder.denoising_class_embed.weight"]
    theirs["decoder.denoising_class_embed.weight"] = torch.cat([label, torch.zeros(1, label.shape[1])])
    theirs["decoder.anchors"] = torch.zeros(1, 10, 4)
    theirs["decoder.decoder.layers.0.cross_attn.num_points_scale"] = torch.ones(12)
    state, unmatched, problems = convert_rtdetr_state_dict(rtdetr_model_state({"ema": {"module": theirs}}), model)
    assert problems == [] and unmatched == []
    other = tiny_rtdetr()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    other.load_state_dict(state)
    assert all(torch.equal(other.state_dict()[k], v) for k, v in model.state_dict().items())
    del theirs["decoder.enc_score_head.weight"]
    _, _, problems = convert_rtdetr_state_dict(theirs, model)
    assert problems == ["enc_class_head.weight (theirs: decoder.enc_score_head.weight)"]


def test_rtdetrs_imagenet_resnet_vd_converts_into_the_backbone(tmp_path):
    """tools/convert_rtdetr.py --backbone: a PResNet state dict (RT-DETR's ImageNet file, its names) becomes the
    ``backbone.*`` tensors of the config's model, every one of them, and nothing else."""
    import os
    import subprocess
    import sys

    from conftest import ROOT
    from detectron2.config import instantiate

    from kddetr.config import load_config
    from kddetr.convert_rtdetr import rtdetr_name

    model = instantiate(load_config(os.path.join(ROOT, "configs/synthetic/rtdetr_r18.py"), []).model)
    backbone = {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v
                for k, v in model.state_dict().items() if k.startswith("backbone.")}
    presnet = {rtdetr_name(k, model)[len("backbone."):]: v for k, v in backbone.items()}
    assert "conv1.conv1_2.conv.weight" in presnet and "res_layers.3.blocks.0.short.conv.conv.weight" in presnet
    torch.save(presnet, tmp_path / "ResNet18_vd.pth")
    run = subprocess.run([sys.executable, "tools/convert_rtdetr.py", "--backbone", "--config-file",
                          "configs/synthetic/rtdetr_r18.py", "--input", str(tmp_path / "ResNet18_vd.pth"), "--output",
                          str(tmp_path / "R-18-vd.pth")], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert run.returncode == 0, run.stdout + run.stderr
    state = torch.load(tmp_path / "R-18-vd.pth", weights_only=False)["model"]
    assert state.keys() == backbone.keys() and all(torch.equal(state[k], v) for k, v in backbone.items())


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_rtdetr_exports_with_its_repvgg_blocks_fused(fmt, tmp_path):
    """The exported graph (RepVGG folded, on a copy) gives the Detectron2 predictions of the unfused model."""
    import numpy as np
    from test_deploy import image_and_reference, spread_scores

    from kddetr.deploy import export_detector, run_exported, unambiguous

    model = spread_scores(randomise_batchnorms(tiny_rtdetr(), seed=0))
    image, ref = image_and_reference(model)
    path = export_detector(model, str(tmp_path / f"model.{fmt}"), 64, 64, fmt)
    assert not any(isinstance(m, RepVggBlock) and m.fused is not None for m in model.modules())  # left as it was
    boxes, scores, labels = run_exported(path, image.numpy())
    np.testing.assert_allclose(scores, ref.scores.numpy(), atol=1e-4, rtol=0)
    ranked = unambiguous(ref.scores.numpy())
    assert ranked.mean() > 0.5
    np.testing.assert_array_equal(labels[ranked], ref.pred_classes.numpy()[ranked])
    np.testing.assert_allclose(boxes[ranked], ref.pred_boxes.tensor.numpy()[ranked], atol=1e-2, rtol=0)


def test_rtdetrs_parts_refuse_what_they_cannot_build():
    """Each refusal names the argument, the value and what is valid."""
    from kddetr.data.backbones import backbone_name
    from kddetr.modeling.criterion import SetCriterion
    from kddetr.modeling.decoders import DeformableDecoder
    from kddetr.modeling.layers.transformer import FFN
    from kddetr.modeling.matcher import HungarianMatcher

    with pytest.raises(ValueError, match=r"ResNetVd: depth must be one of \[18, 34, 50, 101\], got 152"):
        ResNetVd(152)
    with pytest.raises(ValueError, match=r"unknown out_features \['res6'\]"):
        ResNetVd(18, out_features=("res5", "res6"))
    with pytest.raises(ValueError, match="divisible by 4, got 6"):
        sincos_2d(2, 2, 6)
    with pytest.raises(ValueError, match="anchor_embedding must be 'sine' or 'box', got 'mlp'"):
        DeformableDecoder(num_layers=1, embed_dim=32, num_heads=4, ffn_dim=64, anchor_embedding="mlp")
    with pytest.raises(ValueError, match="class_loss must be one of \\('focal', 'varifocal'\\), got 'vfl'"):
        SetCriterion(2, HungarianMatcher(), class_loss="vfl")
    with pytest.raises(ValueError, match="FFN activation must be one of \\['gelu', 'prelu', 'relu'\\], got 'silu'"):
        FFN(8, 16, 0.0, activation="silu")
    with pytest.raises(ValueError, match="variant is one of \\('', 'vd'\\), got 'b'"):
        backbone_name(18, "b")
