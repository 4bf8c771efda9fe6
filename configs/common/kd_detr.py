"""KD-DETR pieces shared by the pair configs: the META_ARCH as they ship it, the paper's points and loss, and
the ablations."""
from detectron2.config import LazyCall as L

from kddetr.distill import (
    KDDETR,
    GeneralPoints,
    Inconsistent,
    KDDETRLoss,
    SimilarForeground,
    SimilarGeneral,
    TeacherQueries,
)
from kddetr.distill.kd_detr import BaselineKDLoss


def kd_points(*, general=900, specific=True, init="normal", resample=True):
    """General points (random anchors, authors' default: N(0, 1) logits, re-drawn every
    iteration) and, if ``specific``, the teacher's own queries (KD-DETR Sec. 4.1)."""
    points = [L(GeneralPoints)(num=general, init=init, resample=resample)] if general else []
    if specific:
        points.append(L(TeacherQueries)())
    return points


def kd_loss(*, class_term="sigmoid", temperature=None, cls=None, l1=5.0, giou=2.0, layers="all",
            foreground_weight=True, normalization="per_image"):
    """Eq. 3-5: KL with temperature on classes, L1 + GIoU on boxes, foreground-weighted.
    ``class_term``: ``"sigmoid"`` (default: a binary KL per class on the sigmoid scores, T 1, ``cls`` 0.5) or
    ``"softmax"`` (the authors': T 10, ``cls`` 2). ``temperature`` and ``cls`` left None follow the class term
    (``CLASS_TERM_DEFAULTS``), so ``model.loss.class_term=softmax`` alone is the authors' loss.
    ``normalization="per_image"``: the class term is divided by the images of the process, the same loss
    on 1, 8 or 16 devices; softmax at ``cls=2`` is the authors' exactly at their layout (2 images per GPU).
    ``"authors"``: their sum over all points of all images of a process (default ``cls`` halved: softmax 1, as
    their code, at any layout)."""
    return L(KDDETRLoss)(temperature=temperature, weights=dict(cls=cls, l1=l1, giou=giou), layers=layers,
                         foreground_weight=foreground_weight, normalization=normalization, class_term=class_term)


#: before the first step train_net.py evaluates the teacher on the first 50 test images and stops below 1 AP
#: (kddetr.engine.teacher_check): a teacher of another dataset or class order loads strictly and still fails it
TEACHER_CHECK = dict(images=50, min_ap=1.0)


def kd_detr(*, teacher, student, teacher_weights, general, specific=True, loss=None, **options):
    """The distillation META_ARCH with KD-DETR as every pair config ships it: ``general`` random points (the
    papers use as many as the teacher's detection queries) and, if ``specific``, the teacher's own queries;
    the default :func:`kd_loss` unless ``loss`` is given (its sigmoid class term per image: the same loss on any
    layout); the teacher check. ``options``: further
    ``KDDETR`` arguments (e.g. ``detrdistill=``)."""
    return L(KDDETR)(teacher=teacher, teacher_weights=teacher_weights, teacher_check=dict(TEACHER_CHECK),
                     student=student, points=kd_points(general=general, specific=specific),
                     loss=kd_loss() if loss is None else loss, **options)


def baseline_loss(*, temperature=10.0, cls=10.0, l1=1.0, beta=1.0 / 9.0, layers="all"):
    """The Table 1 baselines' loss (authors' code): unweighted KL (mean over points) x 10 plus
    smooth L1 (beta 1/9) x 1, no GIoU, student layer l against teacher layer l."""
    return L(BaselineKDLoss)(temperature=temperature, weights=dict(cls=cls, l1=l1), beta=beta, layers=layers)


# KD-DETR Table 1: logit distillation on each model's own detection queries (baselines); use
# them with model.loss = baseline_loss().
INCONSISTENT = [L(Inconsistent)()]
SIMILAR_FOREGROUND = [L(SimilarForeground)()]
SIMILAR_GENERAL = [L(SimilarGeneral)()]
