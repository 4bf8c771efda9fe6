import torch

from kddetr.modeling import HungarianMatcher, SetCriterion
from kddetr.modeling.seam import DecoderOutput


def make_case(error: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    K, Q = 5, 8
    gt_boxes = torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.3, 0.4], [0.5, 0.5, 0.1, 0.1]])
    labels = torch.tensor([0, 3, 2])
    logits = torch.full((1, Q, K), -20.0)
    boxes = torch.rand(1, Q, 4, generator=g) * 0.3 + 0.3
    for q, (lab, box) in enumerate(zip(labels, gt_boxes)):
        logits[0, q, lab] = 20.0
        boxes[0, q] = box
    boxes = boxes + error * torch.randn(boxes.shape, generator=g).abs()
    logits = logits + error * 20 * torch.randn(logits.shape, generator=g)
    out = DecoderOutput(logits=logits[None], boxes=boxes[None].clamp(0.01, 0.99), hidden=torch.zeros(1, 1, Q, 4))
    return out, [{"labels": labels, "boxes": gt_boxes}]


def test_perfect_prediction_is_near_zero_and_loss_grows_with_error():
    crit = SetCriterion(num_classes=5, matcher=HungarianMatcher())
    totals = []
    for err in (0.0, 0.05, 0.2, 0.5):
        out, targets = make_case(err)
        losses = crit(out, targets)
        assert set(losses) == {"loss_class", "loss_bbox", "loss_giou"}
        totals.append(sum(losses.values()).item())
    assert totals[0] < 1e-4
    assert totals == sorted(totals) and totals[-1] > 1.0


def test_denoising_placeholder_keeps_keys():
    crit = SetCriterion(num_classes=5, matcher=HungarianMatcher())
    out, targets = make_case(0.1)
    losses = crit(out, targets, dn_placeholder=torch.zeros(()))
    assert {"loss_class_dn", "loss_bbox_dn", "loss_giou_dn"} <= set(losses)
