"""The inference and evaluation path scores ground truth as perfect (AP 100), and noise lower."""
import math

import torch
from detectron2.data import DatasetCatalog
from detectron2.evaluation import COCOEvaluator

from kddetr.modeling.detectors.base import DETRBase
from kddetr.modeling.layers.box_ops import normalized_cxcywh
from kddetr.modeling.seam import DecoderOutput


def evaluate_gt_predictions(noise: float, num_classes: int = 6, queries: int = 10) -> float:
    dicts = DatasetCatalog.get("synthetic_val_mini")
    model = DETRBase(num_classes, [0, 0, 0], [1, 1, 1], select_box_nums_for_evaluation=100)
    evaluator = COCOEvaluator("synthetic_val_mini", output_dir=None)
    evaluator.reset()
    g = torch.Generator().manual_seed(0)
    for d in dicts:
        h, w = d["height"], d["width"]
        logits = torch.full((1, 1, queries, num_classes), -10.0)
        boxes = torch.full((1, 1, queries, 4), 0.5)
        for q, a in enumerate(d["annotations"][:queries]):
            x, y, bw, bh = a["bbox"]
            xyxy = torch.tensor([[x, y, x + bw, y + bh]])
            boxes[0, 0, q] = normalized_cxcywh(xyxy, (h, w))[0] + noise * torch.randn(4, generator=g)
            logits[0, 0, q, a["category_id"]] = 10.0  # load_coco_json maps ids to contiguous 0..K-1
        out = DecoderOutput(logits=logits, boxes=boxes.clamp(0, 1), hidden=torch.zeros(1, 1, queries, 1))
        inputs = [{"image_id": d["image_id"], "height": h, "width": w}]
        evaluator.process(inputs, model.inference(out, inputs, [(h, w)]))
    return evaluator.evaluate()["bbox"]["AP"]


def test_ground_truth_scores_100_ap_and_noise_scores_less():
    perfect = evaluate_gt_predictions(0.0)
    assert perfect > 99.0
    noisy = evaluate_gt_predictions(0.02)
    assert not math.isnan(noisy) and noisy < perfect - 10
