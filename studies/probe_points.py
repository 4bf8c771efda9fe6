#!/usr/bin/env python
"""What the teacher predicts on each distillation point set of a pair config: mean top-class
probability, share of points above 0.3, mean box width and height (last decoder layer), on a
few synthetic images. A quick check that random general points are not out of the teacher's
distribution.

With ``--student`` (a checkpoint of the pair, e.g. a KD-DETR run's model_final.pth, or the student's
own): how far the student's predictions on the same points are from the teacher's (L1 and 1 - GIoU
between the two boxes, weighted by the teacher's top-class probability as KD-DETR's box terms are),
and for box queries how far each model's box moved from the point's reference box.

With ``--class-terms``: how strongly each KD-DETR class term pulls the student's logits on the points
(the norm of its gradient, per image, weight 1; student untrained unless ``--student``), for the softmax
term (the authors') and the sigmoid one at a few temperatures: the scale one term needs to pull as
hard as another.

    .venv/bin/python studies/probe_points.py --config-file configs/synthetic/deformable_detr_r50_r18.py \\
        model.teacher_weights=output/synthetic/deformable_detr_r50/model_final.pth
    .venv/bin/python studies/probe_points.py --config-file configs/synthetic/dab_deformable_detr_r50_r18.py \\
        --student output/families/dab_deformable_detr/kddetr_seed0/model_final.pth \\
        model.teacher_weights=output/synthetic/dab_deformable_detr_r50/model_final.pth
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, List

if TYPE_CHECKING:
    from torch import Tensor, nn

    from kddetr.modeling.seam import DecoderOutput

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout


def synthetic_inputs(num: int, size: int, seed: int):
    import numpy as np
    import torch

    from kddetr.data.synthetic import render_image

    rng = np.random.default_rng(seed)
    return [{"image": torch.as_tensor(render_image(rng, size)[0].transpose(2, 0, 1).copy()), "height": size,
             "width": size} for _ in range(num)]


def load_student(model: "nn.Module", path: str) -> None:
    """The student of ``model`` from a distillation checkpoint (``student.*``) or its own, strictly."""
    from kddetr.checkpoint import load_strict, model_state_dict

    load_strict(model.student, path, model_state_dict(path, "--student"), key="--student",
                fix="Give a checkpoint trained with this pair config or with its student's own config.")


def agreement(teacher: "DecoderOutput", student: "DecoderOutput", reference: "Tensor") -> "List[Tensor]":
    """Teacher-weighted L1 and 1 - GIoU between the two models' last-layer boxes ``[B, N, 4]``, and for
    box references ``[B, N, 4]`` (logits) the mean 1 - GIoU of each model's box to its reference box."""
    from kddetr.modeling.layers.box_ops import cxcywh_to_xyxy, generalized_box_iou_loss

    def one_minus_giou(a, b):  # box by box, [B, N]
        return generalized_box_iou_loss(cxcywh_to_xyxy(a), cxcywh_to_xyxy(b), reduction="none")

    w = teacher.logits[-1].sigmoid().max(-1)[0]
    tb, sb = teacher.boxes[-1], student.boxes[-1]
    row = [((tb - sb).abs().mean(-1) * w).sum() / w.sum(), (one_minus_giou(tb, sb) * w).sum() / w.sum()]
    if reference.shape[-1] == 4:
        ref = reference.sigmoid()
        row += [one_minus_giou(tb, ref).mean(), one_minus_giou(sb, ref).mean()]
    return row


def print_class_term_gradients(teacher: "dict", student: "dict") -> None:
    """Per point set: the value and gradient norm (on the student's last-layer logits) of KD-DETR's class
    term per image at weight 1, for the softmax term at T 10 and the sigmoid one at T 10 and 1."""
    from kddetr.distill import KDDETRLoss

    variants = [("softmax", 10.0), ("sigmoid", 10.0), ("sigmoid", 1.0)]
    print("\n| point set | " + " | ".join(f"{c} T={t:g}: value / gradient norm" for c, t in variants) + " |")
    print("|---|" + "---|" * len(variants))
    for group, out in student.items():
        t_logits, t_boxes = teacher[group].logits[-1], teacher[group].boxes[-1]
        cells = []
        for term, temperature in variants:
            loss = KDDETRLoss(temperature=temperature, class_term=term, weights={"cls": 1.0, "l1": 5.0, "giou": 2.0})
            s = out.logits[-1].detach().clone().requires_grad_(True)
            w = loss.point_weights(t_logits, None)
            value = loss.terms(s, out.boxes[-1], t_logits, t_boxes, w)["cls"]  # per image, weight 1
            value.backward()
            cells.append(f"{value.item():.4f} / {s.grad.norm().item():.4f}")
        print(f"| {group} | " + " | ".join(cells) + " |")


def main() -> None:
    from kddetr.config import config_argument_parser, load_config

    parser = config_argument_parser(__doc__, "a teacher/student pair config")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--class-terms", action="store_true", help="the gradient norm of each class term "
                        "(softmax, sigmoid at T 10 and 1) on the student's logits of the points")
    parser.add_argument("--student", default="", help="checkpoint of the pair (or of the student alone) whose "
                        "predictions on the same points to compare with the teacher's")
    args = parser.parse_args()

    import torch
    from detectron2.config import instantiate

    cfg = load_config(args.config_file, args.opts)
    cfg.model.detrdistill = None
    model = instantiate(cfg.model).eval()
    if args.student:
        load_student(model, args.student)
    inputs = synthetic_inputs(args.images, args.size, args.seed)
    with torch.no_grad():
        step = model.teacher_predictions(inputs, model.sample_points(torch.Generator().manual_seed(args.seed)))
    print("| point set | points | mean top-class prob | share > 0.3 | mean box w | mean box h |")
    print("|---|---|---|---|---|---|")
    for group, out in step.outputs.items():
        p = out.logits[-1].sigmoid().max(-1)[0]
        wh = out.boxes[-1][..., 2:]
        print(f"| {group} | {p.shape[1]} | {p.mean():.3f} | {(p > 0.3).float().mean():.3f} | "
              f"{wh[..., 0].mean():.3f} | {wh[..., 1].mean():.3f} |")
    if not args.student and not args.class_terms:
        return
    with torch.no_grad():  # the student decodes the same points as in training (eval mode: no dropout)
        groups = model.student_groups(step)
        state = model.student.encode(*model.student.preprocess_image(inputs))
        outs = dict(zip([g.name for g in groups], model.student.decode(state, groups)))
    if args.class_terms:
        print_class_term_gradients(step.outputs, outs)
    if not args.student:
        return
    print("\n| point set | weighted L1 teacher-student | weighted 1-GIoU teacher-student | "
          "1-GIoU teacher box to reference | 1-GIoU student box to reference |")
    print("|---|---|---|---|---|")
    for group, out in outs.items():
        row = agreement(step.outputs[group], out, step.queries[group].reference)
        print(f"| {group} | " + " | ".join(f"{v:.3f}" for v in row) + " |" + " - |" * (5 - 1 - len(row)))


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("probe_points.py"):  # the project's refusals: one message, no traceback
        main()
