"""Query-group names: the one place they are defined.

A detector decodes its own detection queries as :data:`DETECTION` and DINO's denoising groups as
:data:`DENOISING`; a distiller adds groups of its own to the teacher's and the student's fused passes
(:class:`~kddetr.distill.interface.Distiller`), named here so that no two distillers collide.
"""

#: a detector's own detection queries (what it predicts at inference)
DETECTION = "det"
#: DINO's denoising groups (they see the detection queries, never the reverse)
DENOISING = "dn"
#: DETRDistill's teacher-assisted assignment: the teacher's detection queries, decoded by the student
TEACHER_ASSIGNMENT = "tqa"


def point_group(name: str) -> str:
    """KD-DETR's group of the distillation point set ``name`` (``general`` -> ``kd_general``)."""
    return f"kd_{name}"
