"""KD-DETR Table 3 on the embedded synthetic shapes: DAB-DETR R50 (6/6 encoder/decoder layers) ->
DAB-DETR R18 with 6 encoder and 2 decoder layers. As in configs/layer_compression/, every student
decoder layer is trained towards the teacher's last layer; only the student is made shallower.
"""
from ..dab_detr_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.student.encoder.num_layers = 6
model.student.decoder.num_layers = 2
train.output_dir = "./output/synthetic/layer_compression/dab_detr_r50_r18_enc6_dec2"
