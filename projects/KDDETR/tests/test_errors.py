"""Bad input gets a clear error that names the problem and the fix."""
import json
import os

import cv2
import numpy as np
import pytest
import torch
from detectron2.config import LazyConfig
from detectron2.data import DatasetCatalog, MetadataCatalog
from omegaconf import OmegaConf

from conftest import ROOT
from kddetr.data import DetrDatasetMapper, build_train_loader
from kddetr.engine import Trainer
from kddetr.engine.setup import (apply_user_dataset, check_device, check_init_checkpoint, check_num_classes,
                                 check_override_keys)


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


def test_missing_init_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_init_checkpoint(str(tmp_path / "nope.pth"))
    check_init_checkpoint("detectron2://ImageNetPretrained/torchvision/R-50.pkl")  # fetched later
    check_init_checkpoint("")


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    mapper = DetrDatasetMapper(augmentation=[], is_train=False)
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


def test_non_finite_loss_names_the_term():
    model = torch.nn.Linear(2, 2)
    trainer = Trainer(model, [None], torch.optim.SGD(model.parameters(), lr=0.1), device="cpu")
    with pytest.raises(FloatingPointError, match="loss_bbox"):
        trainer._write_metrics({"loss_class": torch.tensor(1.0), "loss_bbox": torch.tensor(float("nan"))}, 0.0)


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
