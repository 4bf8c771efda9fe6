"""DINO R50, 4 scales, 900 queries (detrex dino_r50_4scale)."""
from .dino import dino

model = dino(depth=50)
