"""KD-DETR Table 3: DAB-DETR R50 (6 encoder / 6 decoder layers) -> DAB-DETR R18 with
6 encoder and 4 decoder layers, COCO 2017, 50 epochs (student AP without -> with KD: 35.7 -> 41.0).

Layer mapping: KD-DETR distils predictions, not features, so encoder depth needs no mapping. The
student decodes the distillation points with its 4 decoder layers and *every* student layer i
(0..3) is trained towards the teacher's *last* (6th) layer, as the authors do for all
students (``kd_loss(layers="all")``; ``layers="last"`` distils only the student's last layer).
"""
from ..dab_detr_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from ..dab_detr_r50_r18 import model  # the Table 2 pair; only its student is made shallower

model.student.encoder.num_layers = 6
model.student.decoder.num_layers = 4

# Data, AdamW, the 50-epoch schedule and ImageNet R18 are the student baseline's (configs/dab_detr_r18.py).
train.output_dir = "./output/layer_compression/dab_detr_r50_r18_enc6_dec4"
