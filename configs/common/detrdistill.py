"""DETRDistill pieces shared by the pair configs: each component can be switched off."""
from detectron2.config import LazyCall as L

from kddetr.distill import (
    AssignmentDistillation,
    DETRDistill,
    FeatureDistillation,
    InstanceDistillation,
    PredictionMatcher,
    QueryContrast,
)


def detrdistill(*, instance=True, feature=True, query_contrast=True, assignment=True, target_aware=True, topk=100,
                feature_stages="all"):
    """DETRDistill with the authors' settings (matching costs cls/L1/GIoU 1/5/2, instance loss
    weights 1/5/2, mask from the teacher's top-100 (query, class) pairs clamped at 1e-2,
    contrastive loss weight 0.2 at temperature 0.07, teacher-assisted assignment with the
    teacher's queries). A component set to False is None in the config, i.e. off; on the command
    line: ``model.detrdistill.feature=null``."""
    return L(DETRDistill)(
        matcher=L(PredictionMatcher)(cost_class=1.0, cost_bbox=5.0, cost_giou=2.0),
        instance=L(InstanceDistillation)(weights=dict(cls=1.0, l1=5.0, giou=2.0), target_aware=target_aware)
        if instance else None,
        feature=L(FeatureDistillation)(topk=topk, min_mask=1e-2, weight=1.0, stages=feature_stages)
        if feature else None,
        query_contrast=L(QueryContrast)(weight=0.2, temperature=0.07, negatives="image") if query_contrast else None,
        assignment=L(AssignmentDistillation)() if assignment else None,
    )


def detrdistill_only(model, **components):
    """A KD-DETR pair's ``model`` turned into DETRDistill alone (no KD-DETR points or loss), with the
    pair's teacher, student and schedule, so the two distillers compare at equal iterations."""
    model.points = []
    model.loss = None
    model.detrdistill = detrdistill(**components)
    return model
