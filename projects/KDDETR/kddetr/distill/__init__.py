"""Everything about teacher -> student: the META_ARCH, distillation points and losses."""
from .kd_detr import KDDETRLoss
from .meta_arch import KDDETR, check_pair, load_teacher
from .points import (DistillPoints, GeneralPoints, Inconsistent, PointPairs, SimilarForeground, SimilarGeneral,
                     TeacherQueries)

__all__ = [k for k in dir() if not k.startswith("_")]
