"""DAB-DETR R18 with 2 encoder and 2 decoder layers on the embedded synthetic shapes (the synthetic
R50 teacher has 2 and 3): the student baseline of configs/synthetic/layer_compression/dab_detr_r50_r18_enc2_dec2.py
(KD-DETR Table 3, same schedule, no teacher)."""
from ..dab_detr_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.encoder.num_layers = 2
model.decoder.num_layers = 2
train.output_dir = "./output/synthetic/layer_compression/dab_detr_r18_enc2_dec2"
