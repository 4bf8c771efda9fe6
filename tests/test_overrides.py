"""``key=value`` overrides are checked where they are given: each value against the type of the
config's value at its key, and flags written after the overrides, before anything is built."""
import os
import subprocess
import sys

import pytest
from conftest import ROOT
from omegaconf import OmegaConf

from kddetr.config import check_override_syntax, check_override_values, check_ranges, load_config

DINO = "configs/synthetic/dino_r18.py"
PAIR = "configs/synthetic/dino_r50_r18.py"
DETRDISTILL = "configs/synthetic/detrdistill_dino_r50_r18.py"


def load(opts, config=DINO):
    return load_config(os.path.join(ROOT, config), opts)


REFUSED = [
    ("train.max_iter=abc", r"train.max_iter is an int in .*dino_r18.py \(value 1000\), got str 'abc'\. "
                           r"Give an integer, e.g\. train.max_iter=1000\."),
    ("train.max_iter=3.5", r"train.max_iter is an int .*got float 3.5\. Give an integer, e.g\. train.max_iter=3\."),
    ("optimizer.lr=abc", r"optimizer.lr is a float .*got str 'abc'\. Give a number, e.g\. optimizer.lr=0.0004\."),
    ("train.checkpointer.period=abc", r"train.checkpointer.period is an int .*got str 'abc'"),
    ("train.max_iter=null", r"train.max_iter is an int .*got null"),
    ("train.max_iter=True", r"train.max_iter is an int .*got bool True"),
    ("optimizer.lr=True", r"optimizer.lr is a float .*got bool True"),
    ("train.amp.enabled=1", r"train.amp.enabled is a bool .*got int 1\. Give True or False"),
    ("train.output_dir=[a,b]", r"train.output_dir is a string .*got list \['a', 'b'\]\. Quote a string"),
    ("train.init_checkpoint=null", r"train.init_checkpoint is a string .*got null\. .*train.init_checkpoint=''"),
    ("optimizer.betas=3", r"optimizer.betas is a list .*got int 3\. Give a list in brackets, "
                          r"e.g\. optimizer.betas=\[0.9,0.999\]"),
]


@pytest.mark.parametrize("override, expected", REFUSED, ids=[override for override, _ in REFUSED])
def test_refused_value_names_key_type_value_and_fix(override, expected):
    with pytest.raises(ValueError, match=f"^Config override '{override.replace('[', '.').replace(']', '.')}': "
                                         f"{expected}"):
        load([override])


def test_values_are_checked_before_anything_is_applied():
    cfg = OmegaConf.create({"train": {"max_iter": 10}})
    with pytest.raises(ValueError, match="train.max_iter is an int"):
        check_override_values(cfg, ["train.max_iter=2", "train.max_iter=abc"], "x.py")
    assert cfg.train.max_iter == 10


def test_valid_values_are_accepted():
    cfg = load(["train.max_iter=3", "optimizer.lr=1e-4", "train.amp.enabled=True", "train.init_checkpoint=\"\"",
                "dataloader.train.dataset.names=synthetic_val_mini", "train.device=cpu", "train.seed=0",
                "train.eval_period=0", "dataloader.train.num_workers=0", "dataloader.train.total_batch_size=2",
                "train.model_ema.decay=0.5", "train.output_dir=/tmp/kddetr out", "optimizer.betas=[0.8,0.99]",
                "optimizer.params.base_lr=0.5"])  # base_lr is an interpolation: anything goes
    assert cfg.train.max_iter == 3 and cfg.optimizer.lr == 1e-4 and cfg.train.amp.enabled is True
    assert cfg.train.init_checkpoint == "" and cfg.dataloader.train.dataset.names == "synthetic_val_mini"
    assert list(cfg.optimizer.betas) == [0.8, 0.99] and cfg.train.output_dir == "/tmp/kddetr out"
    assert load(["dataloader.test.dataset.names=[synthetic_val,synthetic_val_mini]"]).dataloader.test.dataset.names \
        == ["synthetic_val", "synthetic_val_mini"]  # dataset names: one or a list


def test_the_class_terms_temperature_and_weight_take_a_number_or_the_default():
    """None in kd_loss() means the class term's default (T 1 and weight 0.5 for the sigmoid term); a number given
    is a float, anything else is refused."""
    cfg = load(["model.loss.temperature=2", "model.loss.weights.cls=1"], PAIR)
    assert cfg.model.loss.temperature == 2.0 and isinstance(cfg.model.loss.temperature, float)
    assert cfg.model.loss.weights.cls == 1.0 and isinstance(cfg.model.loss.weights.cls, float)
    assert load(["model.loss.temperature=null"], PAIR).model.loss.temperature is None
    with pytest.raises(ValueError, match=r"model.loss.temperature is a number \(None in .*: the class term's "
                                         r"default\), got str 'hot'\. Give a number"):
        load(["model.loss.temperature=hot"], PAIR)


def test_numbers_are_converted_to_the_config_type():
    cfg = load(["optimizer.lr=1", "train.max_iter=1e3", "train.output_dir=5"])
    assert cfg.optimizer.lr == 1.0 and isinstance(cfg.optimizer.lr, float)  # an int for a float
    assert cfg.train.max_iter == 1000 and isinstance(cfg.train.max_iter, int)  # an integral float for an int
    assert cfg.train.output_dir == "5"  # a number for a string: the text written
    assert load(["train.max_iter=1e3", "train.max_iter=7"]).train.max_iter == 7  # the last override wins
    assert load(["train.max_iter=7", "train.max_iter=2e1"]).train.max_iter == 20


def test_distillation_configs_accept_paths_points_and_null_subtrees():
    cfg = load(["model.teacher_weights=output/x/model_final.pth", "model.points.0.num=20",
                "model.teacher.num_queries=30", "model.student.dn_number=10"], PAIR)
    assert cfg.model.teacher_weights == "output/x/model_final.pth" and cfg.model.points[0].num == 20
    assert load(["model.detrdistill.feature=null"], DETRDISTILL).model.detrdistill.feature is None
    with pytest.raises(ValueError, match="model.points.0.num is an int"):
        load(["model.points.0.num=many"], PAIR)


def test_interpolation_values_are_accepted():
    assert load(["optimizer.lr=${optimizer.weight_decay}"]).optimizer.lr == load([]).optimizer.weight_decay


@pytest.mark.parametrize("opts, expected", [
    (["train.max_iter=3", "--resume"], "'--resume' is a flag, but it was written after the key=value config "
                                       "overrides.*flags go before the overrides: .* --config-file .*dino_r18.py "
                                       "--resume key=value"),
    (["train.max_iter=3", "--num-gpus", "2"], "'--num-gpus' is a flag.* --num-gpus 2 key=value"),
    (["train.max_iter", "3"], "Config override 'train.max_iter' is not of the form key=value"),
    (["~train.max_iter"], "deleting a key is not supported"),
    (["train.max_iter=1,2"], "Hydra sweep"),
    (["train.max_iter=[1,"], "cannot be parsed"),
])
def test_malformed_overrides(opts, expected):
    with pytest.raises(ValueError, match=expected):
        load(opts)
    with pytest.raises(ValueError, match=expected):  # the same message from the checks alone
        check_override_syntax(opts, os.path.join(ROOT, DINO))
        check_override_values(load([]), opts, os.path.join(ROOT, DINO))


def test_train_net_refuses_a_bad_value_without_a_traceback(tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "train_net.py"), "--config-file", os.path.join(ROOT, DINO),
           "train.max_iter=abc"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.startswith("train_net.py: Config override 'train.max_iter=abc': train.max_iter is an int")
    assert "Give an integer" in proc.stderr


def test_a_keyword_argument_the_config_leaves_at_its_default_is_a_key():
    """``model.allow_untrained_teacher=True`` (the fix a missing teacher's message suggests) is an
    argument of KDDETR that no config sets; typos of it are still refused."""
    cfg = load_config(os.path.join(ROOT, "configs/synthetic/dino_r50_r18.py"), ["model.allow_untrained_teacher=True"])
    assert cfg.model.allow_untrained_teacher is True
    with pytest.raises(KeyError, match="model.allow_untrained_teachers' does not exist"):
        load_config(os.path.join(ROOT, "configs/synthetic/dino_r50_r18.py"), ["model.allow_untrained_teachers=True"])


@pytest.mark.parametrize("override, message", [
    ("model.points.0.num=-5", r"model.points.0.num=-5 is out of range \(distillation points\): it must be >= 1"),
    ("dataloader.train.total_batch_size=0", r"total_batch_size=0 is out of range .*: it must be >= 1"),
    ("model.loss.temperature=0", r"model.loss.temperature=0.0 is out of range \(the temperature\): it must be > 0"),
    ("model.loss.weights.giou=-2", r"model.loss.weights.giou=-2.0 is out of range \(a loss weight\): it must be >= 0"),
    ("optimizer.lr=0", r"optimizer.lr=0.0 is out of range \(the learning rate\): it must be > 0"),
    ("model.student.num_queries=0", r"model.student.num_queries=0 is out of range \(queries\)"),
    ("model.teacher.dn_number=-1", r"model.teacher.dn_number=-1 is out of range \(denoising queries\)"),
    ("train.max_iter=0", r"train.max_iter=0 is out of range \(iterations\)"),
])
def test_values_out_of_range_are_refused_before_anything_is_built(override, message):
    cfg = load_config(os.path.join(ROOT, PAIR), [override])
    with pytest.raises(ValueError, match=message):
        check_ranges(cfg)
    check_ranges(load_config(os.path.join(ROOT, PAIR)))  # the config as shipped is in range


def test_a_batch_the_processes_cannot_share_is_refused():
    cfg = load_config(os.path.join(ROOT, PAIR))  # 8 images
    check_ranges(cfg, 4)
    with pytest.raises(ValueError, match=r"total_batch_size=8 cannot be shared by 3 processes.*e\.g\. 6 or 9"):
        check_ranges(cfg, 3)
    proc = subprocess.run([sys.executable, "train_net.py", "--config-file", PAIR, "model.loss.temperature=0"],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "model.loss.temperature=0.0" in proc.stderr
