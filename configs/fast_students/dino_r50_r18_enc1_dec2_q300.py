"""A fast DINO student: DINO R50 (6/6 layers, 900 queries) -> DINO R18 with 1 encoder and 2
decoder layers and 300 queries, COCO 2017, 12 epochs.

Fewer queries shrink the decoder and the two-stage selection; the distillation points follow
the student's query count (300 general points + the teacher's 900 queries, which the student
decodes as extra groups in the same masked pass).
"""
from ..dino_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from ..dino_r50_r18 import model

model.student.encoder.num_layers = 1
model.student.decoder.num_layers = 2
model.student.num_queries = 300
model.points[0].num = 300  # general points: as many as the student's detection queries

train.output_dir = "./output/fast_students/dino_r50_r18_enc1_dec2_q300"
