"""RT-DETR R50 (RT-DETRv2-L: ResNet-50-vd, 6 decoder layers), COCO 2017 at 640 x 640, 72 epochs.

RT-DETRv2's settings (``rtdetrv2_r50vd_6x_coco.yml``): batch 16, AdamW 1e-4 (backbone 1e-5, no weight decay on
norms), weight decay 1e-4, gradient clipping 0.1, a 2000-iteration warm-up then a constant lr, EMA 0.9999 used
for evaluation. Differs: the augmentation (configs/common/data.py, ``rtdetr_data``); EMA without RT-DETR's
warm-up of its decay; float32 unless ``train.amp.enabled=True`` (RT-DETR trains with AMP).

Backbone: RT-DETR's ImageNet ResNet-50-vd, converted once with
``tools/convert_rtdetr.py --backbone --config-file configs/rtdetr_r50.py --input
ResNet50_vd_ssld_v2_pretrained_from_paddle.pth --output checkpoints/R-50-vd.pth``.
"""
from .common.data import rtdetr_data
from .common.optim import adamw
from .common.schedule import COCO_ITERS_PER_EPOCH, rtdetr_schedule
from .common.train import train_defaults, user_dataset_keys
from .models.rtdetr import rtdetr

EPOCHS = 72

model = rtdetr(depth=50)
dataloader = rtdetr_data(size=640, total_batch_size=16)
optimizer = adamw(lr=1e-4, weight_decay=1e-4, backbone_lr_factor=0.1)
lr_multiplier = rtdetr_schedule(epochs=EPOCHS)
train = train_defaults(output_dir="./output/rtdetr_r50", max_iter=EPOCHS * COCO_ITERS_PER_EPOCH,
                       init_checkpoint="checkpoints/R-50-vd.pth")
train.model_ema.update(enabled=True, decay=0.9999, use_ema_for_evaluation=True)
user_dataset = user_dataset_keys()
