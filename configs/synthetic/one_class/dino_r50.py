"""DINO R50 on the one-class variant of the synthetic shapes (every shape of class "shape": one-class
detection, as people, trees, defects or cells are); otherwise configs/synthetic/dino_r50.py."""
from ...models.dino import synthetic_dino
from ..dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_dino(depth=50, num_classes=1)
dataloader.train.dataset.names = "synthetic_train_one_class"
dataloader.test.dataset.names = "synthetic_val_one_class"
train.output_dir = "./output/synthetic/one_class/dino_r50"
