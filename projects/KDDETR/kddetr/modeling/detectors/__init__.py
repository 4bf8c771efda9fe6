from .base import DETRBase
from .dino import DINO, DINODecoder

__all__ = ["DETRBase", "DINO", "DINODecoder"]
