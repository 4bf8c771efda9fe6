#!/usr/bin/env python
"""Train detrex's own DAB-DETR (IDEA-Research/detrex, projects/dab_detr) on the synthetic data, with the
sizes, data, optimizer, schedule, gradient clipping and pretrained R-50 of configs/synthetic/dab_detr_r50.py,
and write its losses in our metrics.json format: the reference run that tells DAB-DETR's slow convergence on
this data from a bug of ours (docs/RESULTS.md, "Why DAB-DETR and Conditional DETR learn slowly here").

detrex is not a dependency and none of its code is in this repository: point ``--detrex-src`` at a checkout
(``git clone https://github.com/IDEA-Research/detrex``; measured with commit e244e6c3).

    .venv/bin/python studies/detrex_dab_detr.py --detrex-src ../detrex --iters 500 --schedule-iters 2000 \
        --eval --out output/detrex_dab_detr model.input_norm_groups=0
    # ours, same schedule and seed:
    .venv/bin/python train_net.py --config-file configs/synthetic/dab_detr_r50.py train.max_iter=2000 \
        train.eval_period=500 train.seed=0 model.input_norm_groups=0 train.output_dir=output/single_scale/dab_detr_r50

detrex's DAB-DETR projects the backbone level with a bare 1x1 convolution, so the comparison needs
``model.input_norm_groups=0`` (the synthetic configs' GroupNorm after it is ours); without it the tool refuses.
``key=value`` overrides of the config (e.g. the level: ``model.in_feature=res4 model.in_channels=1024
"model.backbone.out_features=[res4]"``, the setting of the committed comparison) apply to both sides.

At run time, without editing detrex's files:

* the packages ``detrex``, ``detrex.utils``, ``detrex.modeling`` and ``projects`` are empty stand-ins, because
  their ``__init__`` files import wandb, timm and detrex's data and config code, none needed here; the
  submodules imported (layers, criterion, matcher, projects.dab_detr.modeling) are detrex's files. Without
  ``detrex._C``, detrex.layers falls back to a stand-in deformable attention that DAB-DETR does not use.
* ``dab_transformer.get_sine_pos_embed`` gets ``num_pos_feats=embed_dim // 2``: detrex's decoder calls it with
  its default 128 features, which fits only ``embed_dim=256`` (our synthetic models use 128); at 256 it
  changes nothing.
"""
import argparse
import functools
import json
import os
import sys
import time
import types
import warnings

warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs/synthetic/dab_detr_r50.py")

sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))
# the synthetic data and its pretrained backbones live under $DETECTRON2_DATASETS, default ./datasets of the cwd
os.environ.setdefault("DETECTRON2_DATASETS", os.path.join(ROOT, "datasets"))


def _stub_package(name, path):
    mod = types.ModuleType(name)
    mod.__path__ = [path]
    mod.__file__ = os.path.join(path, "__init__.py (stubbed by run.py)")
    sys.modules[name] = mod
    return mod


def import_detrex(DETREX):
    """detrex's DAB-DETR parts from the checkout ``DETREX``, imported without its package __init__ files."""
    import importlib

    # appended, not prepended: the checkout's empty detectron2/ submodule folder must not shadow the installed one
    sys.path.append(DETREX)
    _stub_package("detrex", os.path.join(DETREX, "detrex"))
    utils = _stub_package("detrex.utils", os.path.join(DETREX, "detrex", "utils"))
    misc = importlib.import_module("detrex.utils.misc")
    dist = importlib.import_module("detrex.utils.dist")
    for name in ("interpolate", "inverse_sigmoid"):
        setattr(utils, name, getattr(misc, name))
    for name in ("is_dist_avail_and_initialized", "get_world_size", "get_rank"):
        setattr(utils, name, getattr(dist, name))
    sys.modules["detrex"].utils = utils
    layers = importlib.import_module("detrex.layers")  # its own __init__ (no _C: dummy MSDeformAttn, unused)
    _stub_package("detrex.modeling", os.path.join(DETREX, "detrex", "modeling"))  # skip backbone (timm) imports
    criterion = importlib.import_module("detrex.modeling.criterion")
    matcher = importlib.import_module("detrex.modeling.matcher")
    _stub_package("projects", os.path.join(DETREX, "projects"))
    dab = importlib.import_module("projects.dab_detr.modeling")
    dab_transformer = importlib.import_module("projects.dab_detr.modeling.dab_transformer")
    for mod in (layers, criterion, matcher, dab):
        assert mod.__file__.startswith(DETREX), mod.__file__
    return types.SimpleNamespace(layers=layers, SetCriterion=criterion.SetCriterion,
                                 HungarianMatcher=matcher.HungarianMatcher, dab=dab,
                                 dab_transformer=dab_transformer)


def build_model(cfg, D, device):
    """detrex's projects/dab_detr/configs/models/dab_detr_r50.py with our synthetic sizes; the backbone
    is our config's node (Detectron2 ResNet-50, BN, freeze_at=0, the level the config and its overrides give)."""
    import torch.nn as nn
    from detectron2.config import instantiate

    m = cfg.model
    E = m.embed_dim
    enc, dec = m.encoder, m.decoder
    assert enc.activation == "prelu" and dec.activation == "prelu", "detrex DAB-DETR uses PReLU FFNs"
    assert dec.modulate_hw and dec.anchor_pos, "our config is not DAB-DETR's decoder"
    # detrex's decoder calls get_sine_pos_embed(obj_center) with num_pos_feats=128 (= 256 // 2); see docstring
    D.dab_transformer.get_sine_pos_embed = functools.partial(D.layers.get_sine_pos_embed, num_pos_feats=E // 2)

    transformer = D.dab.DabDetrTransformer(
        encoder=D.dab.DabDetrTransformerEncoder(
            embed_dim=E, num_heads=enc.num_heads, attn_dropout=enc.dropout, feedforward_dim=enc.ffn_dim,
            ffn_dropout=enc.dropout, activation=nn.PReLU(), num_layers=enc.num_layers),
        decoder=D.dab.DabDetrTransformerDecoder(
            embed_dim=E, num_heads=dec.num_heads, attn_dropout=dec.dropout, feedforward_dim=dec.ffn_dim,
            ffn_dropout=dec.dropout, activation=nn.PReLU(), num_layers=dec.num_layers, modulate_hw_attn=True),
        num_patterns=0,
    )
    mc, cc = m.criterion.matcher, m.criterion
    weight_dict = dict(cc.weight_dict)  # loss_class 1, loss_bbox 5, loss_giou 2
    for i in range(dec.num_layers - 1):  # detrex config: aux weights = last layer's
        weight_dict.update({f"{k}_{i}": v for k, v in cc.weight_dict.items()})
    criterion = D.SetCriterion(
        num_classes=m.num_classes,
        matcher=D.HungarianMatcher(cost_class=mc.cost_class, cost_bbox=mc.cost_bbox, cost_giou=mc.cost_giou,
                                   cost_class_type="focal_loss_cost", alpha=mc.alpha, gamma=mc.gamma),
        weight_dict=weight_dict, loss_class_type="focal_loss", alpha=cc.alpha, gamma=cc.gamma)
    pe = m.position_embedding
    model = D.dab.DABDETR(
        backbone=instantiate(m.backbone),
        in_features=[m.in_feature],
        in_channels=m.in_channels,
        position_embedding=D.layers.PositionEmbeddingSine(num_pos_feats=pe.num_pos_feats,
                                                          temperature=pe.temperature, normalize=pe.normalize,
                                                          offset=pe.offset),
        transformer=transformer,
        embed_dim=E,
        num_classes=m.num_classes,
        num_queries=m.num_queries,
        criterion=criterion,
        aux_loss=True,
        pixel_mean=list(m.pixel_mean),
        pixel_std=list(m.pixel_std),
        freeze_anchor_box_centers=True,
        select_box_nums_for_evaluation=m.select_box_nums_for_evaluation,
        device=device,
    )
    return model.to(device)


def load_backbone(model, path):
    """``train.init_checkpoint`` into detrex's model through train_net.py's own ``load_weights``
    (the file holds ``{"model": {"backbone.<name>": tensor}}``, the prefix of detrex's
    ``DABDETR.backbone``); Detectron2's checkpointer logs the keys it did not load."""
    from detectron2.utils.logger import setup_logger

    from kddetr.data.backbones import SCHEME, cached_path

    if path.startswith(SCHEME):  # never let the handler pretrain a new backbone: use the existing file
        cached = cached_path(int(path[len(SCHEME):].split("-")[1]))
        if not os.path.isfile(cached):
            raise FileNotFoundError(f"{path} -> {cached} does not exist (check $DETECTRON2_DATASETS)")
    setup_logger(name="fvcore")  # the checkpointer's missing / unexpected keys
    sys.path.insert(0, ROOT)
    import train_net

    train_net.load_weights(model, path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detrex-src", required=True, help="a checkout of github.com/IDEA-Research/detrex")
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--out", default="output/detrex_dab_detr")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schedule-iters", type=int, default=None,
                   help="max_iter the LR schedule is spread over (default: the config's train.max_iter, 4000, "
                        "as train_net.py; pass N to mirror a run of ours with train.max_iter=N)")
    p.add_argument("--log-period", type=int, default=10)
    p.add_argument("--window", type=int, default=None,
                   help="losses written as medians over this many iterations (default 20, as our "
                        "metrics.json was when this study's records were made; 1: raw values)")
    p.add_argument("--no-backbone", action="store_true", help="do not load the pretrained backbone")
    p.add_argument("--eval", action="store_true", help="COCOEvaluator on the config's test set at the end")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("opts", nargs="*", help="key=value overrides of configs/synthetic/dab_detr_r50.py")
    args = p.parse_args()
    dab = os.path.join(args.detrex_src, "projects", "dab_detr", "modeling", "dab_detr.py")
    if not os.path.isfile(dab):
        raise SystemExit(f"--detrex-src {args.detrex_src}: no {dab}; clone github.com/IDEA-Research/detrex and "
                         "give its folder")

    import numpy as np
    import torch
    from detectron2.config import instantiate
    from detectron2.solver import LRMultiplier
    from detectron2.utils.env import seed_all_rng

    if args.threads:
        torch.set_num_threads(args.threads)
    import kddetr.data  # noqa: F401  registers synthetic_train/val and synthetic-backbone://
    from kddetr.config import load_config
    from kddetr.data import build_train_loader

    cfg = load_config(CONFIG, args.opts)
    if cfg.model.input_norm_groups:
        raise SystemExit("detrex's DAB-DETR has no GroupNorm after its input projection: add "
                         "model.input_norm_groups=0 (and the same override to the train_net.py run compared with it)")
    D = import_detrex(os.path.abspath(args.detrex_src))
    device = "cpu"  # the config says cuda when available; this script is for the CPU comparison
    if torch.cuda.is_available():
        device = cfg.train.device
    seed_all_rng(args.seed)  # python, numpy, torch (also fixes the sampler's shared_random_seed)
    torch.manual_seed(args.seed)

    model = build_model(cfg, D, device)
    if not args.no_backbone and cfg.train.init_checkpoint:
        load_backbone(model, cfg.train.init_checkpoint)
    model.train()

    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)  # AdamW 4e-4, wd 1e-4, no wd on norms, backbone factor 1.0
    loader, _ = build_train_loader(cfg.dataloader.train)  # as train_net.py: batch 8, 1 worker, seeded sampler
    sched_iters = args.schedule_iters or cfg.train.max_iter
    scheduler = LRMultiplier(optimizer, multiplier=instantiate(cfg.lr_multiplier), max_iter=sched_iters)
    clip = dict(cfg.train.clip_grad.params) if cfg.train.clip_grad.enabled else None
    params = [q for g in optimizer.param_groups for q in g["params"]]
    window = args.window or 20
    print(f"[setup] detrex DABDETR {sum(q.numel() for q in model.parameters()) / 1e6:.2f} M params; "
          f"{len(optimizer.param_groups)} param groups; schedule over {sched_iters} iters; clip {clip}; "
          f"batch {cfg.dataloader.train.total_batch_size}; window {window}; device {device}; "
          f"threads {torch.get_num_threads()}", flush=True)

    os.makedirs(args.out, exist_ok=True)
    metrics_path = os.path.join(args.out, "metrics.json")
    open(metrics_path, "w").close()
    history = {}
    it = iter(loader)
    t_start = time.perf_counter()
    for i in range(args.iters):
        t0 = time.perf_counter()
        data = next(it)
        t_data = time.perf_counter() - t0
        loss_dict = model(data)
        losses = sum(loss_dict.values())
        values = {k: float(v.detach()) for k, v in loss_dict.items()}
        values["total_loss"] = float(losses.detach())
        if not all(np.isfinite(list(values.values()))):
            raise FloatingPointError(f"iteration {i}: non-finite losses {values}")
        optimizer.zero_grad()
        losses.backward()
        if clip is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip["max_norm"], clip.get("norm_type", 2.0))
            values["grad_norm"] = float(grad_norm)
        optimizer.step()
        lr = max(optimizer.param_groups, key=lambda g: len(g["params"]))["lr"]  # as hooks.LRScheduler
        scheduler.step()
        values["time"], values["data_time"] = time.perf_counter() - t0, t_data
        for k, v in values.items():
            history.setdefault(k, []).append(v)
        if (i + 1) % args.log_period == 0 or i + 1 == args.iters:
            rec = {"iteration": i}  # 0-based, as Detectron2's JSONWriter
            for k in ("loss_class", "loss_bbox", "loss_giou", "total_loss"):
                rec[k] = float(np.median(history[k][-window:]))
            for k in sorted(history):
                if k.startswith("loss_") and k not in rec:  # aux layers, same names as ours (_0, _1)
                    rec[k] = float(np.median(history[k][-window:]))
            rec["grad_norm"] = float(np.median(history["grad_norm"][-window:])) if "grad_norm" in history else None
            rec["lr"] = lr
            rec["time"] = float(np.median(history["time"][-window:]))
            with open(metrics_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)
    print(f"[train] {args.iters} iterations in {time.perf_counter() - t_start:.1f} s; per-iteration times "
          f"{[round(t, 2) for t in history['time']][:10]}", flush=True)
    torch.save({"model": model.state_dict(), "iteration": args.iters - 1}, os.path.join(args.out, "model_final.pth"))

    if args.eval:
        from detectron2.evaluation import inference_on_dataset, print_csv_format

        model.eval()
        test_loader = instantiate(cfg.dataloader.test)
        evaluator = instantiate(cfg.dataloader.evaluator)  # COCOEvaluator(synthetic_val)
        with torch.no_grad():
            results = inference_on_dataset(model, test_loader, evaluator)
        print_csv_format(results)
        bbox = results.get("bbox", {})
        print(f"[eval] AP {bbox.get('AP')} AP50 {bbox.get('AP50')} AP75 {bbox.get('AP75')}", flush=True)
        with open(os.path.join(args.out, "eval.json"), "w") as f:
            json.dump({"iteration": args.iters - 1, **results}, f)


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("detrex_dab_detr.py"):  # the project's refusals: one message, no traceback
        main()
