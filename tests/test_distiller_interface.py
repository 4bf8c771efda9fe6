"""The distiller interface: every shipped distiller plugs into ``KDDETR`` through it, with the losses it gave
before the interface existed, and a new distiller needs no change to the package.

``tests/data/distiller_losses.json`` holds the loss dict of one training step of each shipped distiller on tiny
models (fixed seeds), written by the code before the interface (commit 5856a98) with
``python tests/test_distiller_interface.py --write``; the test compares today's step with it."""
import json
import os
import sys
from typing import Dict, List

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, build_tiny_dino, synthetic_batch
from torch import nn

from kddetr.distill import (
    KDDETR,
    AssignmentDistillation,
    BaselineKDLoss,
    DETRDistill,
    FeatureDistillation,
    GeneralPoints,
    Inconsistent,
    InstanceDistillation,
    KDDETRLoss,
    QueryContrast,
    SimilarGeneral,
    TeacherQueries,
)
from kddetr.modeling.groups import DETECTION

RECORD = os.path.join(ROOT, "tests", "data", "distiller_losses.json")


def detrdistill():
    return DETRDistill(instance=InstanceDistillation(), feature=FeatureDistillation(), query_contrast=QueryContrast(),
                       assignment=AssignmentDistillation())


#: name -> KDDETR arguments of each shipped distiller (and the two together); "kd_detr" was recorded with the
#: then default class term, the authors' softmax one (the default has been the sigmoid one since)
SHIPPED = {
    "kd_detr": lambda: dict(points=[GeneralPoints(num=12), TeacherQueries()], loss=KDDETRLoss(class_term="softmax")),
    "kd_detr_sigmoid": lambda: dict(points=[GeneralPoints(num=12), TeacherQueries()],
                                    loss=KDDETRLoss(class_term="sigmoid", temperature=1.0,
                                                    weights={"cls": 2.0})),  # the then default weight
    "kd_detr_authors_sum": lambda: dict(points=[GeneralPoints(num=12, init="uniform"), TeacherQueries(num=5)],
                                        loss=KDDETRLoss(class_term="softmax", normalization="authors")),
    "baseline_inconsistent": lambda: dict(points=[Inconsistent()], loss=BaselineKDLoss()),
    "baseline_similar_general": lambda: dict(points=[SimilarGeneral()], loss=BaselineKDLoss()),
    "detrdistill": lambda: dict(detrdistill=detrdistill()),
    "kd_detr_and_detrdistill": lambda: dict(points=[GeneralPoints(num=12), TeacherQueries()],
                                            loss=KDDETRLoss(class_term="softmax"),
                                            detrdistill=detrdistill()),
}


def one_step(**distillers) -> Dict[str, float]:
    """The loss dict of one training step of a tiny DINO pair (teacher 3 decoder layers, student 2)."""
    torch.manual_seed(0)
    teacher = build_tiny_dino(embed_dim=48, ffn_dim=96, dec_layers=3)
    student = build_tiny_dino()
    model = KDDETR(teacher=teacher, student=student, allow_untrained_teacher=True, **distillers).train()
    torch.manual_seed(1)
    points = model.sample_points(torch.Generator().manual_seed(2))
    losses = model(synthetic_batch(2, seed=3), points)
    return {k: float(v.detach()) for k, v in sorted(losses.items())}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_shipped_distiller_gives_the_losses_it_gave_before_the_interface(name):
    before = json.load(open(RECORD))[name]
    now = one_step(**SHIPPED[name]())
    assert sorted(now) == sorted(before), name
    for key, value in before.items():
        assert now[key] == pytest.approx(value, rel=1e-5, abs=1e-7), f"{name}: {key}"


class LogitMimic(nn.Module):
    """A third distiller, defined here only: the student's detection queries mimic the teacher's detection
    queries' class probabilities (MSE of the sigmoid scores, query by query, last layers) -- it asks the
    teacher to decode its own queries and adds nothing to the student's pass."""

    name = "logit_mimic"
    shares_queries = False

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight
        self.calls: List[str] = []

    def bind(self, teacher: nn.Module, student: nn.Module) -> None:
        self.calls.append("bind")

    def check_num_classes(self, num_classes: int) -> None:
        self.calls.append("check_num_classes")

    def sample(self, generator: torch.Generator) -> Dict[str, torch.Tensor]:
        return {}

    def teacher_groups(self, teacher_default, sampled):
        return {DETECTION: teacher_default}

    def student_groups(self, teacher):
        return []

    def losses(self, step):
        s, t = step.student_outputs[DETECTION], step.teacher.outputs[DETECTION]
        n = min(s.logits.shape[2], t.logits.shape[2])
        return {"loss_mimic": self.weight * F.mse_loss(s.logits[-1, :, :n].sigmoid(), t.logits[-1, :, :n].sigmoid())}


def test_a_distiller_defined_outside_the_package_trains_through_the_interface():
    """Registered from this file alone (``KDDETR(distillers=[...])``, as ``model.distillers=[L(...)(...)]`` in a
    config), it is bound to the pair, its loss is in the step's dict, and 3 optimizer steps move the student."""
    torch.manual_seed(0)
    mimic = LogitMimic()
    model = KDDETR(teacher=build_tiny_dino(embed_dim=48, ffn_dim=96, dec_layers=3), student=build_tiny_dino(),
                   distillers=[mimic], allow_untrained_teacher=True).train()
    assert mimic.calls == ["check_num_classes", "bind"]
    before = {k: v.clone() for k, v in model.student.state_dict().items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    batch = synthetic_batch(2, seed=3)
    for _ in range(3):
        losses = model(batch)
        assert "loss_mimic" in losses and torch.isfinite(losses["loss_mimic"])
        assert not any(k.startswith("loss_kd") for k in losses)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    assert any(not torch.equal(before[k], v) for k, v in model.student.state_dict().items())


if __name__ == "__main__" and "--write" in sys.argv:
    os.makedirs(os.path.dirname(RECORD), exist_ok=True)
    json.dump({name: one_step(**make()) for name, make in sorted(SHIPPED.items())}, open(RECORD, "w"), indent=1)
    print(f"wrote {RECORD}")


def test_the_interface_refuses_what_would_clash():
    """Something that is not a distiller, two distillers of one name, two that give one loss key, and two that
    ask the teacher for different groups under one name are refused, each naming the problem."""
    def model(*distillers):
        torch.manual_seed(0)
        return KDDETR(teacher=build_tiny_dino(embed_dim=48, ffn_dim=96, dec_layers=3), student=build_tiny_dino(),
                      distillers=list(distillers), allow_untrained_teacher=True).train()

    with pytest.raises(TypeError, match=r"Linear is not a distiller \(missing \['bind', "):
        model(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="distillers need distinct names, got \\['logit_mimic', 'logit_mimic'\\]"):
        model(LogitMimic(), LogitMimic())

    class Renamed(LogitMimic):
        name = "logit_mimic_2"

    with pytest.raises(ValueError, match="two distillers give the loss 'loss_mimic'"):
        model(LogitMimic(), Renamed())(synthetic_batch(2, seed=3))

    class OtherDetection(Renamed):
        def losses(self, step):
            return {}

        def teacher_groups(self, teacher_default, sampled):
            return {DETECTION: teacher_default.first()}  # another Queries under the detection group's name

    with pytest.raises(ValueError, match="ask the teacher to decode different groups named 'det'"):
        model(LogitMimic(), OtherDetection())(synthetic_batch(2, seed=3))
