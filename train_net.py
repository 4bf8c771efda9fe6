#!/usr/bin/env python
"""Train and evaluate KD-DETR models with Detectron2 LazyConfig files (the detrex shape).

    python train_net.py --config-file configs/dino_r50.py --num-gpus 8
    python train_net.py --config-file configs/dino_r50.py --eval-only train.init_checkpoint=model.pth
    python train_net.py --config-file configs/synthetic/dino_r18.py train.max_iter=20   # CPU demo
    python train_net.py --config-file configs/dino_r50_r18.py --num-gpus 8              # distillation

A distillation config (``model = L(KDDETR)(...)``) trains the student only, with the
DistillTrainer; ``train.init_checkpoint`` then initialises the student (e.g. its ImageNet
backbone) and the teacher always comes from ``model.teacher_weights``.
"""
import logging
import os
import sys
import warnings

# fvcore (imported by detectron2) scripts a function with torch.jit, which recent torch reports as
# deprecated on every start; it is not ours to fix, and says nothing to a user.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.engine import default_argument_parser, default_setup, default_writers, hooks, launch
from detectron2.engine.defaults import create_ddp_model
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from detectron2.utils.events import JSONWriter
from detectron2.utils.logger import setup_logger

# configs and this script import kddetr; this finds it in a source checkout that was not pip-installed
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "projects", "KDDETR"))

from kddetr.checkpoint import FiniteCheckpointer, load_strict, model_state_dict, read_state_dict
from kddetr.config import (
    apply_user_dataset,
    check_class_term,
    check_device,
    check_inputs,
    check_num_classes,
    check_ranges,
    is_backbone_pretraining,
    load_config,
)
from kddetr.data import build_train_loader
from kddetr.data.unreadable import ReadableOnlyEvaluator, SkipUnreadable
from kddetr.distill import KDDETR
from kddetr.engine import DistillTrainer, EMAHook, ModelEMA, Trainer, unwrap
from kddetr.engine.teacher_check import check_teacher
from kddetr.errors import Refusal, refusals_exit

logger = logging.getLogger("kddetr")
INIT_KEY = "train.init_checkpoint"


def do_test(cfg, model):
    """Run the COCO evaluator of ``cfg.dataloader`` on ``model``; returns its results."""
    if "evaluator" not in cfg.dataloader:
        return {}
    # unreadable test images are reported and left out; the rest is evaluated
    results = inference_on_dataset(SkipUnreadable(model), instantiate(cfg.dataloader.test),
                                   ReadableOnlyEvaluator(instantiate(cfg.dataloader.evaluator)))
    print_csv_format(results)
    return results


def build_model(cfg):
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    logger.info("Model:\n{}".format(model))
    return model


def load_weights(model, path: str) -> None:
    """Load ``train.init_checkpoint`` as initialisation. A distillation checkpoint (``student.*``
    keys) goes into a distiller whole; any other file into the model, or into a distiller's
    student (e.g. its ImageNet backbone: missing keys are expected and only logged)."""
    model = unwrap(model)
    state = read_state_dict(path, INIT_KEY)  # a corrupt file is named here, with its config key
    if isinstance(model, KDDETR) and not any(k.startswith("student.") for k in state):
        model = model.student
    DetectionCheckpointer(model).load(path)


def load_for_evaluation(model, path: str) -> None:
    """Load every tensor of the evaluated model from ``path`` (``--eval-only``): a checkpoint of
    the model, or a distillation checkpoint whose student it is. Anything missing or of another
    shape is refused: evaluating half-random weights would report a meaningless AP."""
    model = unwrap(model)
    unused = load_strict(model, path, model_state_dict(path, INIT_KEY), key=INIT_KEY,
                         fix="Evaluate it with the config it was trained with (and the same key=value overrides).")
    logger.info(f"Loaded all {len(model.state_dict())} tensors of the evaluated model from {path}"
                + (f" ({unused} extra keys in the file ignored)" if unused else ""))


def writers(cfg):
    """Detectron2's default writers, every ``train.log_period`` iterations; the losses in metrics.json are each
    the mean over the ``train.log_period`` iterations before it (``train.metrics_window`` 1, the default), or
    the median of the last ``train.metrics_window`` such means."""
    out = default_writers(cfg.train.output_dir, cfg.train.max_iter)
    window = cfg.train.get("metrics_window", 1)
    for i, w in enumerate(out):
        if isinstance(w, JSONWriter) and window != w._window_size:
            w.close()
            out[i] = JSONWriter(os.path.join(cfg.train.output_dir, "metrics.json"), window_size=window)
    return out


def ddp(cfg, model):
    kwargs = dict(cfg.train.ddp)
    if torch.device(cfg.train.device).type == "cpu":
        kwargs.update(device_ids=None, output_device=None)  # GLOO on CPU processes
    return create_ddp_model(model, **kwargs)


def do_train(args, cfg):
    model = build_model(cfg)
    distill = isinstance(model, KDDETR)
    # a distiller's optimizer holds everything trainable: the student and the distiller's own
    # parts (DETRDistill's adapter and projection heads); the frozen teacher has no trainable parameter
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    train_loader, sampler = build_train_loader(cfg.dataloader.train)
    check_num_classes(cfg)
    model = ddp(cfg, model)

    # EMA of what the checkpoints hold: the whole model, or a distiller's student
    ema = None
    if cfg.train.model_ema.enabled:
        ema = ModelEMA(model, cfg.train.model_ema.decay, cfg.train.model_ema.device)
    kwargs = dict(
        amp=cfg.train.amp.enabled,
        clip_grad_params=dict(cfg.train.clip_grad.params) if cfg.train.clip_grad.enabled else None,
        device=cfg.train.device,
        sampler=sampler,
        samples_per_iter=cfg.dataloader.train.total_batch_size // comm.get_world_size(),
        max_unreadable_fraction=cfg.train.get("max_unreadable_fraction", 0.01),
        gather_metric_period=cfg.train.log_period,  # the losses reach the host when they are written
    )
    # base of the per-step random streams (the same on every process; --resume restores it)
    kwargs["seed"] = cfg.train.seed if cfg.train.seed >= 0 else comm.shared_random_seed()
    trainer = (DistillTrainer if distill else Trainer)(model, train_loader, optimizer, **kwargs)
    extra = {"ema": ema} if ema is not None else {}
    checkpointer = FiniteCheckpointer(model, cfg.train.output_dir, trainer=trainer, **extra)
    trainer.checkpointer = checkpointer

    def test_fn():
        if ema is not None and cfg.train.model_ema.use_ema_for_evaluation:
            with ema.swapped_into(model) as m:
                return do_test(cfg, m)
        return do_test(cfg, model)

    trainer.register_hooks([
        hooks.IterationTimer(),
        EMAHook(ema, model) if ema is not None else None,
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
        hooks.EvalHook(cfg.train.eval_period, test_fn),
        hooks.PeriodicWriter(writers(cfg), period=cfg.train.log_period) if comm.is_main_process() else None,
    ])
    if args.resume and checkpointer.has_checkpoint():
        checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=True)
        start_iter = trainer.iter + 1
    else:
        if cfg.train.init_checkpoint:
            load_weights(model, cfg.train.init_checkpoint)
        start_iter = 0
    if distill and start_iter > 0:
        logger.info("Teacher check: done when the run started (resumed at iteration {})".format(start_iter))
    elif distill and unwrap(model).teacher_weights:  # an untrained teacher is allowed explicitly, not checked
        check_teacher(unwrap(model).teacher, unwrap(model).teacher_check, cfg.dataloader, unwrap(model).teacher_weights)
    trainer.train(start_iter, cfg.train.max_iter)


def check_config(cfg, args) -> None:
    """The checks that need nothing built: the user dataset (registered here), every input file,
    the device. (``load_config`` has checked the override keys.)"""
    apply_user_dataset(cfg)
    check_ranges(cfg, 1 if args.eval_only else args.num_gpus * args.num_machines)  # evaluation shares no batch
    if args.eval_only and (not cfg.train.init_checkpoint or is_backbone_pretraining(cfg.train.init_checkpoint)):
        start = f" ('{cfg.train.init_checkpoint}' is the backbone the config trains from)" \
            if cfg.train.init_checkpoint else ""
        raise ValueError("--eval-only needs the weights to evaluate: set train.init_checkpoint=<model_final.pth> "
                         f"(a checkpoint of this config, or a distillation checkpoint of this pair config){start}.")
    if not args.eval_only:
        check_class_term(cfg)  # a config mistake, named before any missing file
    check_inputs(cfg, eval_only=args.eval_only)
    check_device(cfg.train.device, args.num_gpus)


def main(args):
    """One process's run. A refusal (bad input, non-finite stop) of a process among several is printed by
    that process and ends it with status 1; the launcher then stops the others and ``cli`` exits with 1."""
    try:
        return run(args)
    except Refusal as e:
        if comm.get_world_size() == 1:
            raise  # cli prints it
        print(f"train_net.py (process {comm.get_rank()}): {e}", file=sys.stderr, flush=True)
        sys.exit(1)


def run(args):
    cfg = load_config(args.config_file, args.opts)
    setup_logger(cfg.train.output_dir, distributed_rank=comm.get_rank(), name="kddetr")
    check_config(cfg, args)
    default_setup(cfg, args)
    if torch.device(cfg.train.device).type == "cpu" and comm.get_world_size() > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // comm.get_local_size()))

    if args.eval_only:
        if "student" in cfg.model:  # a distillation config: evaluate the student, no teacher needed
            cfg.model = cfg.model.student
        model = ddp(cfg, build_model(cfg))
        load_for_evaluation(model, cfg.train.init_checkpoint)
        return do_test(cfg, model)
    do_train(args, cfg)


def dist_url_of(args, argv) -> str:
    """The rendezvous address: on one machine, a free port unless ``--dist-url`` is given, so that two runs
    (or two tests) on one machine do not both take Detectron2's default port, which depends only on the user."""
    given = any(a == "--dist-url" or a.startswith("--dist-url=") for a in argv)
    return args.dist_url if given or args.num_machines > 1 else "auto"


def cli(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = default_argument_parser().parse_args(argv)
    try:
        # once here, before processes are spawned: a mistake is one message, not a traceback per process
        check_config(load_config(args.config_file, args.opts), args)
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as e:
        raise SystemExit(f"train_net.py: {e.args[0] if e.args else e}") from None
    with refusals_exit("train_net.py"):  # the project's refusals: one message, no traceback
        try:
            launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                   dist_url=dist_url_of(args, argv), args=(args,))
        except torch.multiprocessing.ProcessExitedException as e:
            if e.exit_code != 1:
                raise
            raise SystemExit(1) from None  # a process printed its refusal


if __name__ == "__main__":
    cli()
