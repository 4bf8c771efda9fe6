"""Every synthetic config, teacher, student and pair, trains 3 iterations through train_net.py from
its pretrained backbone (``train.init_checkpoint = synthetic-backbone://R-<depth>``; the tests'
short pretraining, conftest.synthetic_backbones) and evaluates.

In one process (``train_net.cli``, as ``--num-gpus 1`` runs ``main``), to keep the 27 runs inside
the CI budget; test_train_net.py covers the subprocess, multi-process and resume paths."""
import glob
import json
import os

import pytest
import torch
from conftest import ROOT
from detectron2.config import instantiate

from kddetr.config import load_config

CONFIGS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "configs/synthetic/**/*.py"),
                                                                recursive=True))
FAST = ["dataloader.train.total_batch_size=2", "dataloader.train.num_workers=0", "dataloader.test.num_workers=0",
        "dataloader.test.dataset.names=synthetic_val_mini", "train.log_period=1", "train.device=cpu",
        "train.max_iter=3", "train.eval_period=3", "train.checkpointer.period=1000"]


@pytest.mark.parametrize("config", CONFIGS)
def test_config_trains_three_iterations_from_its_pretrained_backbone(config, tmp_path, monkeypatch):
    import train_net

    monkeypatch.chdir(ROOT)
    cfg = load_config(os.path.join(ROOT, config), [])
    opts = [f"train.output_dir={tmp_path / 'out'}", *FAST]
    if "student" in cfg.model:  # a random teacher of the config's architecture (its training is tested elsewhere)
        torch.manual_seed(0)
        teacher = tmp_path / "teacher.pth"
        torch.save({"model": instantiate(cfg.model.teacher).state_dict()}, teacher)
        opts += [f"model.teacher_weights={teacher}", "model.teacher_check.images=0"]  # random: not checked
    backbone = (cfg.model.student if "student" in cfg.model else cfg.model).backbone
    depth = backbone.stages.depth if "stages" in backbone else backbone.depth  # Detectron2's ResNet, or ResNet-vd

    train_net.cli(["--config-file", config, *opts])
    log = (tmp_path / "out" / "log.txt").read_text()
    assert f"Loading from synthetic-backbone://R-{depth}" in log
    rows = [json.loads(line) for line in open(tmp_path / "out" / "metrics.json")]
    assert [r["iteration"] for r in rows if "total_loss" in r] == [0, 1, 2]
    assert any("bbox/AP" in r for r in rows) and (tmp_path / "out" / "model_final.pth").is_file()
