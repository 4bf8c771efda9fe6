"""Everything about teacher -> student: the META_ARCH, KD-DETR's distillation points and loss,
DETRDistill's losses."""
from .detrdistill import (
                          AssignmentDistillation,
                          DETRDistill,
                          FeatureDistillation,
                          InstanceDistillation,
                          PredictionMatcher,
                          QueryContrast,
                          stage_map,
)
from .kd_detr import BaselineKDLoss, KDDETRLoss
from .meta_arch import KDDETR, TeacherStep, check_pair, load_teacher
from .points import (
                          DistillPoints,
                          GeneralPoints,
                          Inconsistent,
                          PointPairs,
                          SimilarForeground,
                          SimilarGeneral,
                          TeacherQueries,
)

__all__ = [
    "AssignmentDistillation",
    "DETRDistill",
    "FeatureDistillation",
    "InstanceDistillation",
    "PredictionMatcher",
    "QueryContrast",
    "stage_map",
    "BaselineKDLoss",
    "KDDETRLoss",
    "KDDETR",
    "TeacherStep",
    "check_pair",
    "load_teacher",
    "DistillPoints",
    "GeneralPoints",
    "Inconsistent",
    "PointPairs",
    "SimilarForeground",
    "SimilarGeneral",
    "TeacherQueries",
]
