"""Bad input gets a clear error that names the problem and the fix."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import ROOT
from detectron2.config import LazyConfig
from detectron2.data import DatasetCatalog, MetadataCatalog
from omegaconf import OmegaConf

from kddetr.config import (
    apply_user_dataset,
    check_device,
    check_init_checkpoint,
    check_inputs,
    check_num_classes,
    check_override_keys,
    load_config,
)
from kddetr.data import DetrDatasetMapper, build_train_loader


def synthetic_cfg():
    return LazyConfig.load(os.path.join(ROOT, "configs/synthetic/dino_r18.py"))


def test_unknown_config_key_names_close_matches():
    cfg = synthetic_cfg()
    check_override_keys(cfg, ["train.max_iter=3", "model.num_queries=10"], "x.py")  # existing keys pass
    with pytest.raises(KeyError, match="train.max_iters.*Did you mean: train.max_iter"):
        check_override_keys(cfg, ["train.max_iters=3"], "x.py")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda():
    with pytest.raises(RuntimeError, match="train.device=cpu"):
        check_device("cuda")
    check_device("cpu")


def test_missing_inputs_of_a_coco_pair_are_listed_before_anything_is_built(tmp_path, monkeypatch):
    """The README's COCO command on a machine without COCO, teacher or ImageNet weights: one
    message naming each missing file and how to get it."""
    monkeypatch.chdir(tmp_path)  # relative paths resolve from here: nothing exists
    cfg = load_config(os.path.join(ROOT, "configs/dino_r50_r18.py"))
    with pytest.raises(FileNotFoundError) as e:
        check_inputs(cfg)
    msg = str(e.value)
    assert "datasets/coco/annotations/instances_train2017.json" in msg and "DETECTRON2_DATASETS" in msg
    assert "'checkpoints/dino_r50.pth' (model.teacher_weights)" in msg and "tools/convert_detrex.py" in msg
    assert "checkpoints/R-18.pkl" in msg and "tools/convert_torchvision.py --depth 18" in msg
    with pytest.raises(FileNotFoundError) as e:
        check_inputs(cfg, eval_only=True)  # evaluating the student needs no teacher
    assert "teacher" not in str(e.value)
    os.makedirs("datasets/coco/annotations")
    for split in ("train2017", "val2017"):
        open(f"datasets/coco/annotations/instances_{split}.json", "w").close()
    cfg.model.teacher_weights = cfg.train.init_checkpoint = ""
    check_inputs(cfg)  # nothing missing any more
    check_inputs(load_config(os.path.join(ROOT, "configs/synthetic/dino_r18.py")))  # generated on first use


def test_train_net_reports_missing_inputs_without_a_traceback(tmp_path):
    config = os.path.join(ROOT, "configs/dino_r50_r18.py")
    cmd = [sys.executable, os.path.join(ROOT, "train_net.py"), "--config-file", config, "--num-gpus", "8"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)  # relative paths: nothing
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.startswith("train_net.py: Missing inputs:") and "checkpoints/dino_r50.pth" in proc.stderr


def test_missing_init_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_init_checkpoint(str(tmp_path / "nope.pth"))
    check_init_checkpoint("detectron2://ImageNetPretrained/torchvision/R-50.pkl")  # fetched later
    check_init_checkpoint("")
    # RT-DETR's ImageNet ResNet-vd: the message names the converter that makes it
    with pytest.raises(FileNotFoundError, match=r"ResNet-18-vd backbone\) does not exist: convert RT-DETR's "
                       r"ImageNet ResNet18_vd file into it with 'tools/convert_rtdetr.py --backbone"):
        check_init_checkpoint(str(tmp_path / "R-18-vd.pth"))


def test_unreadable_image_names_the_file(tmp_path):
    """By default an unreadable image becomes a marker naming the file (kddetr.data.unreadable), which keeps its
    place in the sample stream; with skip_unreadable=False the mapper raises, naming it."""
    from kddetr.data.unreadable import UNREADABLE

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    for is_train in (True, False):
        marker = DetrDatasetMapper(augmentation=[], is_train=is_train)(
            {"file_name": str(bad), "image_id": 1, "height": 8, "width": 8, "annotations": []})
        assert marker[UNREADABLE].startswith(f"DetrDatasetMapper: cannot read image '{bad}'") and "image" not in marker
        assert (marker["image_id"], marker["height"], marker["width"]) == (1, 8, 8)  # aspect grouping still works
    mapper = DetrDatasetMapper(augmentation=[], is_train=False, skip_unreadable=False)
    with pytest.raises(OSError, match="broken.png"):
        mapper({"file_name": str(bad), "image_id": 1, "height": 8, "width": 8})


def test_dataset_without_annotations():
    DatasetCatalog.register("kddetr_test_no_boxes", lambda: [{"file_name": "a.png", "image_id": 1, "annotations": []}])
    cfg = synthetic_cfg()
    cfg.dataloader.train.dataset.names = "kddetr_test_no_boxes"
    with pytest.raises(ValueError, match="'kddetr_test_no_boxes' has no box annotations"):
        build_train_loader(cfg.dataloader.train)


def test_dataset_and_model_class_counts_must_agree():
    cfg = synthetic_cfg()
    check_num_classes(cfg)
    cfg.model.num_classes = 80
    with pytest.raises(ValueError, match="6 classes but the model has num_classes=80"):
        check_num_classes(cfg)


def write_user_coco(root, split, n=4, classes=("cat", "dog")):
    """A tiny user dataset in COCO format (two classes)."""
    os.makedirs(root / split, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annos = [], []
    for i in range(1, n + 1):
        img = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
        cv2.imwrite(str(root / split / f"{i}.jpg"), img)
        images.append({"id": i, "file_name": f"{i}.jpg", "height": 64, "width": 80})
        annos.append({"id": i, "image_id": i, "category_id": 1 + i % 2, "bbox": [10, 10, 30, 20], "area": 600,
                      "iscrowd": 0})
    path = root / f"{split}.json"
    path.write_text(json.dumps({"images": images, "annotations": annos,
                                "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)]}))
    return path


def test_user_dataset_registers_and_sets_num_classes(tmp_path):
    cfg = synthetic_cfg()
    cfg.user_dataset.train_json = str(write_user_coco(tmp_path, "train"))
    cfg.user_dataset.train_images = str(tmp_path / "train")
    cfg.user_dataset.test_json = str(write_user_coco(tmp_path, "val"))
    cfg.user_dataset.test_images = str(tmp_path / "val")
    apply_user_dataset(cfg)
    assert cfg.dataloader.train.dataset.names == "user_train"
    assert cfg.dataloader.test.dataset.names == "user_test"
    assert cfg.model.num_classes == 2 and cfg.model.criterion.num_classes == 2
    assert OmegaConf.is_interpolation(cfg.model.criterion, "num_classes")  # left pointing at model.num_classes
    assert MetadataCatalog.get("user_train").thing_classes == ["cat", "dog"]
    check_num_classes(cfg)

    cfg.user_dataset.train_json = str(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        apply_user_dataset(cfg)


def test_model_ema_tracks_and_swaps_weights():
    from kddetr.engine import ModelEMA

    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.constant_(model.weight, 0.0)
    ema = ModelEMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    assert torch.allclose(ema.state["weight"], torch.full((1, 2), 0.5))
    with ema.swapped_into(model):
        assert torch.allclose(model.weight, torch.full((1, 2), 0.5))
    assert torch.allclose(model.weight, torch.ones(1, 2))  # restored after evaluation


def test_user_dataset_half_configured_or_inconsistent(tmp_path):
    cfg = synthetic_cfg()
    cfg.user_dataset.train_json = str(write_user_coco(tmp_path, "train"))
    with pytest.raises(ValueError, match="train_images is not"):
        apply_user_dataset(cfg)
    cfg.user_dataset.train_images = str(tmp_path / "train")
    cfg.user_dataset.test_json = str(write_user_coco(tmp_path, "val", classes=("cat", "bird")))
    cfg.user_dataset.test_images = str(tmp_path / "val")
    with pytest.raises(ValueError, match="different categories"):
        apply_user_dataset(cfg)
    not_coco = tmp_path / "list.json"
    not_coco.write_text(json.dumps({"images": []}))
    cfg.user_dataset.test_json = str(not_coco)
    with pytest.raises(ValueError, match="missing \\['annotations', 'categories'\\]"):
        apply_user_dataset(cfg)
    cfg.user_dataset.test_json = ""
    cfg.user_dataset.train_images = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="image folder"):
        apply_user_dataset(cfg)


def test_training_forward_without_ground_truth(tiny_dino):
    from conftest import synthetic_batch

    with pytest.raises(ValueError, match="no 'instances'"):
        tiny_dino.train()(synthetic_batch(1, with_targets=False))


def test_building_blocks_refuse_bad_sizes():
    from detectron2.layers import ShapeSpec

    from kddetr.modeling import ChannelMapper, Queries, QueryGroup, fused_attention_mask
    from kddetr.modeling.layers import MSDeformAttn

    with pytest.raises(ValueError, match="divisible by num_heads"):
        MSDeformAttn(embed_dim=30, num_heads=8)
    with pytest.raises(ValueError, match="num_outs"):
        ChannelMapper({"res5": ShapeSpec(channels=8)}, ["res5"], out_channels=8, num_outs=0, norm_groups=1)
    q = Queries(torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="unique"):
        fused_attention_mask([QueryGroup("a", q), QueryGroup("a", q)], torch.device("cpu"))
    with pytest.raises(KeyError, match="unknown group 'b'"):
        fused_attention_mask([QueryGroup("a", q, sees=("b",)), QueryGroup("c", q)], torch.device("cpu"))


def test_an_empty_teacher_is_refused_with_one_message():
    proc = subprocess.run([sys.executable, "train_net.py", "--config-file", "configs/synthetic/dino_r50_r18.py",
                           'model.teacher_weights=""'], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "train_net.py: KDDETR: model.teacher_weights is empty" in proc.stderr
