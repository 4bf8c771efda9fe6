"""Everything about teacher -> student: the META_ARCH, the distiller interface, KD-DETR's distillation
points and loss, DETRDistill's losses."""
from .detrdistill import (
                          AssignmentDistillation,
                          DETRDistill,
                          FeatureDistillation,
                          InstanceDistillation,
                          PredictionMatcher,
                          QueryContrast,
                          stage_map,
)
from .interface import Distiller, DistillStep, TeacherStep
from .kd_detr import BaselineKDLoss, KDDETRDistiller, KDDETRLoss
from .meta_arch import KDDETR, check_pair, load_teacher
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
    "Distiller",
    "DistillStep",
    "TeacherStep",
    "BaselineKDLoss",
    "KDDETRDistiller",
    "KDDETRLoss",
    "KDDETR",
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
