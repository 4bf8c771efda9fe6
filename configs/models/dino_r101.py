"""DINO R101, 4 scales, 900 queries (detrex dino_r101_4scale)."""
from .dino import dino

model = dino(depth=101)
