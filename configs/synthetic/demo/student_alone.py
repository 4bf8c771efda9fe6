"""`make demo`'s student alone: the faster synthetic DINO R18 (1 encoder and 2 decoder layers,
configs/synthetic/fast_students/dino_r18_enc1_dec2.py) trained 100 iterations at batch 8, the synthetic
schedule compressed to that length (lr x0.1 at 85): the baseline of student_kd.py."""
from ...common.schedule import synthetic_schedule
from ..fast_students.dino_r18_enc1_dec2 import dataloader, model, optimizer, train, user_dataset  # noqa: F401

ITERS = 100

lr_multiplier = synthetic_schedule(ITERS)
train.update(max_iter=ITERS, eval_period=ITERS, output_dir="./output/demo/student_alone")
train.checkpointer.period = ITERS
