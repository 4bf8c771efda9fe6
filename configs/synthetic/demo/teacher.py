"""`make demo`'s teacher: the synthetic DINO R18 (configs/synthetic/dino_r18.py: 2 encoder and 3 decoder
layers) trained 300 iterations at batch 8 on the schedule of the synthetic configs compressed to that
length (lr x0.1 at 255). On 2 CPU cores an R18 learns faster per second than the R50 here (300 R18
iterations: 27.8 AP in 5.5 min; 200 R50 iterations: 17.1 AP in 6 min; docs/RESULTS.md, "`make demo`")."""
from ...common.schedule import synthetic_schedule
from ..dino_r18 import dataloader, model, optimizer, train, user_dataset  # noqa: F401

ITERS = 300

lr_multiplier = synthetic_schedule(ITERS)
train.update(max_iter=ITERS, eval_period=ITERS, output_dir="./output/demo/teacher")
train.checkpointer.period = ITERS
