"""Exported graphs (TorchScript, ONNX in onnxruntime) give the detector's own predictions, for every family."""
import json

import numpy as np
import pytest
import torch
from conftest import FAMILIES, build_tiny, synthetic_batch

from kddetr.deploy import DeployableDetector, export_detector, parity, run_exported, unambiguous


def spread_scores(model):
    """Untrained heads score every query alike (bias at the prior), which makes top-k order a
    coin toss between ties; random class weights give distinct scores, so the order is defined."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and m.out_features == model.num_classes:
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))
    return model.eval()


def image_and_reference(model, size=64):
    batch = synthetic_batch(1, size=size, with_targets=False)
    image = batch[0]["image"].float()[None]
    with torch.no_grad():
        ref = model([{"image": batch[0]["image"], "height": size, "width": size}])[0]["instances"]
    return image, ref


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_graph_matches_the_detectron2_predictions(family, fmt, tmp_path):
    model = spread_scores(build_tiny(family))
    image, ref = image_and_reference(model)
    path = export_detector(model, str(tmp_path / f"model.{fmt}"), 64, 64, fmt)
    boxes, scores, labels = run_exported(path, image.numpy())
    assert boxes.shape == (len(ref), 4) and scores.shape == labels.shape == (len(ref),)
    np.testing.assert_allclose(scores, ref.scores.numpy(), atol=1e-5, rtol=0)
    # where two scores are within float rounding, the two runtimes may rank them either way: compare
    # labels and boxes where the rank is unambiguous (most of them, or the test says so)
    ranked = unambiguous(ref.scores.numpy())
    assert ranked.mean() > 0.5
    np.testing.assert_array_equal(labels[ranked], ref.pred_classes.numpy()[ranked])
    np.testing.assert_allclose(boxes[ranked], ref.pred_boxes.tensor.numpy()[ranked], atol=1e-3, rtol=0)  # pixels
    contract = json.loads(open(path + ".json").read())
    assert contract["input"]["shape"] == [1, 3, 64, 64] and contract["k"] == len(ref)


def test_the_graph_is_traced_for_its_size_only(tmp_path):
    """A graph traced at 64 x 64 run on another size is wrong or fails: the contract fixes the size."""
    model = spread_scores(build_tiny("dino"))
    path = export_detector(model, str(tmp_path / "m.onnx"), 64, 64, "onnx")
    other = np.zeros((1, 3, 64, 96), np.float32)
    with pytest.raises(Exception):
        run_exported(path, other)


def test_deployable_detector_clips_boxes_like_instances():
    model = spread_scores(build_tiny("dab_detr"))
    with torch.no_grad():
        model.box_head.layers[-1].bias[2:] = 4.0  # boxes far larger than the image: clipping has work to do
    image, ref = image_and_reference(model)
    with torch.no_grad():
        out = model.decode(*_state_and_queries(model, image))[0]
    assert float(model.detections(out)[2].max()) > 1.0  # the raw boxes leave the image
    with torch.no_grad():
        boxes, _, _ = DeployableDetector(model)(image)
    assert float(boxes.min()) >= 0 and float(boxes.max()) <= 64
    torch.testing.assert_close(boxes, ref.pred_boxes.tensor)


def _state_and_queries(model, image):
    from detectron2.structures import ImageList

    from kddetr.modeling.seam import QueryGroup

    x = (image - model.pixel_mean) / model.pixel_std
    state = model.encode(ImageList(x, [(64, 64)]), torch.zeros(1, 64, 64, dtype=torch.bool))
    return state, [QueryGroup("det", model.default_queries(state))]


def test_parity_reports_a_wrong_graph(tmp_path):
    """The tool's parity check sees a graph of other weights (it can fail)."""
    model = spread_scores(build_tiny("dino"))
    image, _ = image_and_reference(model)
    path = export_detector(model, str(tmp_path / "m.onnx"), 64, 64, "onnx")
    good = parity(model, path, image)
    assert good["score"] < 1e-5 and good["box_px"] < 1e-3 and good["labels_equal"] == 1.0 and good["share"] > 0.5
    with torch.no_grad():
        model.class_head[-1].bias += 0.5
    assert parity(model, path, image)["score"] > 1e-3


def test_size_divisibility_needs_a_size_without_padding(tmp_path):
    model = build_tiny("dino")
    model.size_divisibility = 32
    with pytest.raises(ValueError, match="divisible by 32"):
        export_detector(model, str(tmp_path / "m.onnx"), 48, 64, "onnx")


def test_unknown_format_and_bad_size_are_refused(tmp_path):
    model = build_tiny("dino")
    with pytest.raises(ValueError, match="unknown export format 'tflite'"):
        export_detector(model, str(tmp_path / "m"), 64, 64, "tflite")
    with pytest.raises(ValueError, match="must be positive"):
        export_detector(model, str(tmp_path / "m"), 0, 64, "onnx")
