"""DINO R18, 4 scales, 900 queries (detrex dino_r18_4scale)."""
from .dino import dino

model = dino(depth=18)
