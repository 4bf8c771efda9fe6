"""Under train.amp (bf16 autocast on the CPU) the matching costs, the distillers' masks and
similarity logits and every distillation loss equal their float32 values on the same inputs."""
import contextlib

import pytest
import torch
from test_detrdistill import encoder_state

from kddetr.distill import BaselineKDLoss, KDDETRLoss, PointPairs
from kddetr.distill.detrdistill import (
    FeatureDistillation,
    InstanceDistillation,
    PredictionMatcher,
    _gather_pairs,
    info_nce,
)
from kddetr.modeling.matcher import HungarianMatcher
from kddetr.modeling.seam import DecoderOutput

L, B, N, K, D = 2, 2, 12, 5, 16


def autocast(enabled: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def outputs(seed: int, n: int = N) -> DecoderOutput:
    g = torch.Generator().manual_seed(seed)
    centers, sizes = torch.rand(L, B, n, 2, generator=g) * 0.6 + 0.2, torch.rand(L, B, n, 2, generator=g) * 0.3 + 0.05
    boxes = torch.cat([centers, sizes], -1)
    return DecoderOutput(logits=torch.randn(L, B, n, K, generator=g) * 3, boxes=boxes,
                         hidden=torch.randn(L, B, n, D, generator=g))


def both(fn):
    """``fn()`` in float32 and under bf16 autocast."""
    with autocast(False):
        ref = fn()
    with autocast(True):
        amp = fn()
    return ref, amp


def test_autocast_is_active_on_this_machine():
    """Otherwise the comparisons below could not fail."""
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    with autocast(True):
        assert (a @ b).dtype == torch.bfloat16


def test_hungarian_matcher_cost_in_float32():
    s = outputs(0)
    targets = [{"labels": torch.tensor([1, 3]), "boxes": outputs(1).boxes[0, 0, :2]},
               {"labels": torch.tensor([0]), "boxes": outputs(2).boxes[0, 0, :1]}]
    labels, gt = torch.cat([t["labels"] for t in targets]), torch.cat([t["boxes"] for t in targets])
    matcher = HungarianMatcher()
    ref, amp = both(lambda: matcher.cost_matrix(s.logits[0].flatten(0, 1), s.boxes[0].flatten(0, 1), labels, gt))
    assert amp.dtype == torch.float32
    torch.testing.assert_close(amp, ref, rtol=1e-6, atol=1e-6)
    ref, amp = both(lambda: matcher(s.logits[0], s.boxes[0], targets))
    assert all(torch.equal(a[0], r[0]) and torch.equal(a[1], r[1]) for a, r in zip(amp, ref))


def test_detrdistill_matching_cost_in_float32():
    s, t = outputs(0), outputs(1, n=9)
    matcher = PredictionMatcher()
    ref, amp = both(lambda: matcher.cost_matrix(s.logits, s.boxes, t.logits, t.boxes))
    assert amp.dtype == torch.float32
    torch.testing.assert_close(amp, ref, rtol=1e-6, atol=1e-6)


def test_feature_mask_in_float32():
    torch.manual_seed(0)
    shapes = [(4, 4), (2, 2)]
    features = torch.randn(B, 20, D)
    t = outputs(3)
    fd = FeatureDistillation(topk=4)
    scores = t.logits.sigmoid()
    ref, amp = both(lambda: fd.masks(encoder_state(features, shapes), t, scores))
    assert amp.dtype == torch.float32
    torch.testing.assert_close(amp, ref, rtol=1e-6, atol=1e-6)


def test_query_contrast_logits_in_float32():
    a, s = torch.randn(10, D), torch.randn(10, D)
    ref, amp = both(lambda: info_nce(a, s, 0.07))
    torch.testing.assert_close(amp, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("target_aware", [True, False])
def test_instance_distillation_losses_in_float32(target_aware):
    s, t = outputs(0), outputs(1, n=9)
    flat = PredictionMatcher()(s.logits.flatten(0, 1), s.boxes.flatten(0, 1), t.logits.flatten(0, 1),
                               t.boxes.flatten(0, 1))
    pairs = [_gather_pairs(flat[i * B:(i + 1) * B], torch.device("cpu")) for i in range(L)]
    scores = t.logits.sigmoid() if target_aware else None
    ref, amp = both(lambda: InstanceDistillation(target_aware=target_aware)(s, t, pairs, [0, 1], scores))
    assert ref.keys() == amp.keys()
    for k in ref:
        torch.testing.assert_close(amp[k].float(), ref[k], rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.parametrize("loss", [KDDETRLoss(), KDDETRLoss(normalization="per_image"), BaselineKDLoss()])
def test_kd_detr_losses_in_float32(loss):
    s, t = outputs(0), outputs(1)
    valid = torch.rand(B, N, generator=torch.Generator().manual_seed(4)) > 0.3
    pairs = [PointPairs(s.logits, s.boxes, t.logits, t.boxes), PointPairs(s.logits, s.boxes, t.logits, t.boxes, valid)]
    ref, amp = both(lambda: loss(pairs))
    assert ref.keys() == amp.keys()
    for k in ref:
        torch.testing.assert_close(amp[k].float(), ref[k], rtol=1e-5, atol=1e-6, msg=k)
