"""A faster DINO student: DINO R50 (6 encoder / 6 decoder layers) -> DINO R18 with 2 encoder and
3 decoder layers, COCO 2017, 12 epochs (KD-DETR Table 3's layer compression, applied to DINO).

At 800 x 1333 the deformable encoder over the 4 levels costs most of DINO's time, so cutting its
layers is what makes the student faster; R50 -> R18 alone buys little (docs/RESULTS.md, "A student
worth deploying": tools/benchmark_inference.py). The student decodes the distillation points with
its 3 layers; every layer is trained towards the teacher's last one (``kd_loss(layers="all")``).
"""
from ..dino_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from ..dino_r50_r18 import model  # the Table 2 pair; only its student is made smaller

model.student.encoder.num_layers = 2
model.student.decoder.num_layers = 3

train.output_dir = "./output/fast_students/dino_r50_r18_enc2_dec3"
