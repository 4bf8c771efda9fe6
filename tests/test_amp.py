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


@pytest.mark.parametrize("loss", [KDDETRLoss(), KDDETRLoss(class_term="softmax"), KDDETRLoss(normalization="authors"),
                                  BaselineKDLoss()])
def test_kd_detr_losses_in_float32(loss):
    s, t = outputs(0), outputs(1)
    valid = torch.rand(B, N, generator=torch.Generator().manual_seed(4)) > 0.3
    pairs = [PointPairs(s.logits, s.boxes, t.logits, t.boxes), PointPairs(s.logits, s.boxes, t.logits, t.boxes, valid)]
    ref, amp = both(lambda: loss(pairs))
    assert ref.keys() == amp.keys()
    for k in ref:
        torch.testing.assert_close(amp[k].float(), ref[k], rtol=1e-5, atol=1e-6, msg=k)


# ----------------------------------------------------------------------------- teacher in reduced precision

def test_teacher_in_bf16_predicts_within_tolerance_of_fp32_in_float32():
    """model.teacher_precision="bf16": the teacher's outputs come back in float32, close to the fp32 teacher's."""
    from conftest import build_tiny_kd, synthetic_batch

    batch = synthetic_batch(2)
    results = {}
    for precision in ("fp32", "bf16"):
        model = build_tiny_kd(teacher_precision=precision).train()
        points = model.sample_points(torch.Generator().manual_seed(0))
        results[precision] = model.teacher_predictions(batch, points)
    ref, low = results["fp32"], results["bf16"]
    assert set(ref.outputs) == set(low.outputs)
    for group in ref.outputs:
        out = low.outputs[group]
        assert out.logits.dtype == out.boxes.dtype == out.hidden.dtype == torch.float32
    assert low.state.memory.dtype == torch.float32
    # The general points sit at the same positions in both runs, so their predictions compare one by
    # one. (The teacher's own queries come from a top-k over proposals, which bf16 may reorder.)
    a, b = ref.outputs["kd_general"], low.outputs["kd_general"]
    # bf16 keeps 8 bits of mantissa: about 2-3 significant digits through the whole network
    torch.testing.assert_close(b.logits.sigmoid(), a.logits.sigmoid(), atol=0.03, rtol=0)
    torch.testing.assert_close(b.boxes, a.boxes, atol=0.03, rtol=0)
    assert not torch.equal(b.logits, a.logits)  # it did run in bf16


def test_unknown_teacher_precision_is_refused():
    from conftest import build_tiny_kd

    with pytest.raises(ValueError, match="teacher_precision must be one of"):
        build_tiny_kd(teacher_precision="int8")
