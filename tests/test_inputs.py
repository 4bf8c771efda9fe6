"""A user dataset is checked when it is registered; the served student checks its input image."""
import json
import re

import cv2
import numpy as np
import pytest
import torch
from conftest import TINY, load_config_module
from detectron2.config import LazyConfig, get_cfg
from detectron2.data import DatasetCatalog
from omegaconf import OmegaConf

from kddetr.config import add_kddetr_config
from kddetr.data import register_user_coco
from kddetr.export import StudentPredictor

# ----------------------------------------------------------------------------- user datasets


def write_coco(root, annotations=None, images=None, n=3, text=None):
    """A small COCO instances json under ``root`` with ``n`` images on disk (two categories);
    ``annotations`` / ``images`` replace the generated lists, ``text`` the whole file."""
    (root / "images").mkdir(exist_ok=True)
    listed = []
    for i in range(1, n + 1):
        cv2.imwrite(str(root / "images" / f"{i}.png"), np.zeros((16, 16, 3), np.uint8))
        listed.append({"id": i, "file_name": f"{i}.png", "height": 16, "width": 16})
    annos = [{"id": 10 + i, "image_id": i, "category_id": 1 + i % 2, "bbox": [1, 2, 8, 6], "area": 48, "iscrowd": 0}
             for i in range(1, n + 1)]
    annos = annos if annotations is None else annotations
    coco = {"images": listed if images is None else images, "annotations": annos,
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    path = root / "instances.json"
    path.write_text(json.dumps(coco) if text is None else text)
    return str(path), str(root / "images")


def test_valid_user_dataset_registers(tmp_path):
    json_file, images = write_coco(tmp_path)
    assert register_user_coco("kddetr_test_inputs_ok", json_file, images) == ["cat", "dog"]
    assert len(DatasetCatalog.get("kddetr_test_inputs_ok")) == 3


def test_malformed_json_names_the_file(tmp_path):
    json_file, images = write_coco(tmp_path, text='{"images": [], "annotations": [,]}')
    with pytest.raises(ValueError, match=r"instances\.json' is not valid json \(.*line 1 column"):
        register_user_coco("kddetr_test_inputs_bad", json_file, images)


@pytest.mark.parametrize("bbox", [[1, 2, -8, 6], [1, 2, 8, -0.5], [1, 2, 8], "1 2 8 6", [1, 2, float("nan"), 6]])
def test_bad_box_is_refused_naming_the_annotation(tmp_path, bbox):
    annos = [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2, 8, 6]},
             {"id": 8, "image_id": 2, "category_id": 2, "bbox": bbox}]
    json_file, images = write_coco(tmp_path, annotations=annos)
    with pytest.raises(ValueError, match=r"1 of 2 annotations in '.*instances\.json' have a bbox .* annotation ids 8 "
                                         r".*Fix or remove these annotations"):
        register_user_coco("kddetr_test_inputs_bad", json_file, images)


def test_many_bad_boxes_are_counted(tmp_path):
    annos = [{"id": i, "image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 5]} for i in range(100, 112)]
    json_file, images = write_coco(tmp_path, annotations=annos)
    with pytest.raises(ValueError, match=re.escape("annotation ids 100, 101, 102, 103, 104, ... (12 in all)")):
        register_user_coco("kddetr_test_inputs_bad", json_file, images)


def test_unknown_category_id_names_the_file_and_the_id(tmp_path):
    annos = [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2, 8, 6]},
             {"id": 8, "image_id": 2, "category_id": 5, "bbox": [1, 2, 8, 6]}]
    json_file, images = write_coco(tmp_path, annotations=annos)
    with pytest.raises(ValueError, match=r"instances\.json' have a category_id .*ids 1, 2\): category_id 5 "
                                         r"in annotation ids 8"):
        register_user_coco("kddetr_test_inputs_bad", json_file, images)


def test_annotation_of_an_unlisted_image_is_refused(tmp_path):
    annos = [{"id": 8, "image_id": 42, "category_id": 1, "bbox": [1, 2, 8, 6]}]
    json_file, images = write_coco(tmp_path, annotations=annos)
    with pytest.raises(ValueError, match="image_id 42 in annotation ids 8"):
        register_user_coco("kddetr_test_inputs_bad", json_file, images)


def test_missing_images_are_counted_at_registration(tmp_path):
    listed = [{"id": i, "file_name": f"{i}.png", "height": 16, "width": 16} for i in range(1, 4)]
    listed += [{"id": 4, "file_name": "gone.png", "height": 16, "width": 16},
               {"id": 5, "file_name": "sub/also_gone.png", "height": 16, "width": 16}]
    json_file, images = write_coco(tmp_path, images=listed)
    with pytest.raises(FileNotFoundError, match=r"2 of 5 images listed in .* are not in .*'gone.png', "
                                                r"'sub/also_gone.png'"):
        register_user_coco("kddetr_test_inputs_bad", json_file, images)


def test_entries_without_required_fields_are_refused(tmp_path):
    annos = [{"id": 8, "image_id": 1, "bbox": [1, 2, 8, 6]}]  # no category_id
    json_file, images = write_coco(tmp_path, annotations=annos)
    with pytest.raises(ValueError, match="1 entries of 'annotations' .* lack one of"):
        register_user_coco("kddetr_test_inputs_bad", json_file, images)


# ----------------------------------------------------------------------------- served student

SIZE = dict(TINY, num_queries=10)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    """A StudentPredictor over an untrained tiny DINO saved the way tools/export_student.py saves one."""
    from detectron2.config import CfgNode as CN
    from detectron2.config import instantiate

    out = tmp_path_factory.mktemp("export")
    model_cfg = load_config_module("models/dino.py").dino(**SIZE)
    torch.manual_seed(0)
    torch.save({"model": instantiate(model_cfg).state_dict()}, out / "student.pth")
    LazyConfig.save(OmegaConf.create({"model": model_cfg}), str(out / "student_model.yaml"))
    pred = CN()
    pred.MODEL = CN(dict(META_ARCHITECTURE="KDDETRStudent", WEIGHTS=str(out / "student.pth"), DEVICE="cpu"))
    pred.MODEL.KDDETR = CN(dict(MODEL_CONFIG=str(out / "student_model.yaml")))
    pred.INPUT = CN(dict(FORMAT=model_cfg.get("input_format", "RGB"), MIN_SIZE_TEST=32, MAX_SIZE_TEST=64))
    (out / "predictor.yaml").write_text(pred.dump())
    cfg = get_cfg()
    add_kddetr_config(cfg)
    cfg.merge_from_file(str(out / "predictor.yaml"))
    return StudentPredictor(cfg)


def bgr_image(h=32, w=40):
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_bgr_uint8_image_is_served(predictor):
    inst = predictor(bgr_image())["instances"]
    assert inst.image_size == (32, 40) and len(inst) > 0
    assert set(inst.get_fields()) == {"pred_boxes", "scores", "pred_classes"}


@pytest.mark.parametrize("image, match", [
    (None, "cv2.imread returns None"),
    (torch.zeros(32, 40, 3, dtype=torch.uint8), "got torch.Tensor"),
    ([[0, 1], [2, 3]], "got builtins.list"),
])
def test_non_array_is_refused(predictor, image, match):
    with pytest.raises(TypeError, match=f"H x W x 3 uint8 numpy array in BGR order.*{match}"):
        predictor(image)


@pytest.mark.parametrize("shape", [(0, 40, 3), (32, 0, 3), (0, 0)])
def test_empty_image_is_refused(predictor, shape):
    with pytest.raises(ValueError, match=re.escape(f"empty image of shape {shape}")):
        predictor(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("shape, hint", [
    ((32, 40, 2), ""),
    ((3, 32, 40), "channels-first"),
    ((2, 32, 40, 3), "one image at a time"),
    ((32,), ""),
])
def test_wrong_shape_is_refused(predictor, shape, hint):
    with pytest.raises(ValueError, match=re.escape(f"got shape {shape}.") + f".*{hint}"):
        predictor(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint16, bool])
def test_wrong_dtype_is_refused(predictor, dtype):
    with pytest.raises(TypeError, match=f"got dtype {np.dtype(dtype)}.*astype\\(np.uint8\\)"):
        predictor(bgr_image().astype(dtype))


def same_detections(a, b) -> None:
    assert set(a.get_fields()) == set(b.get_fields()) and len(a) == len(b) > 0
    torch.testing.assert_close(a.scores, b.scores)
    torch.testing.assert_close(a.pred_boxes.tensor, b.pred_boxes.tensor)


@pytest.mark.parametrize("keepdim", [False, True])
def test_grayscale_is_converted_to_three_channels(predictor, keepdim):
    gray = bgr_image()[:, :, 0]
    out = predictor(gray[:, :, None] if keepdim else gray)["instances"]
    same_detections(out, predictor(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))["instances"])


def test_bgra_loses_its_alpha(predictor):
    bgr = bgr_image()
    bgra = np.concatenate([bgr, np.full(bgr.shape[:2] + (1,), 7, np.uint8)], axis=2)
    same_detections(predictor(bgra)["instances"], predictor(bgr)["instances"])
    assert StudentPredictor.check_image(bgra).shape == (32, 40, 3)
