#!/usr/bin/env python
"""Export a trained model for deployment: the distilled student (or a single model).

    # Detectron2 checkpoint + DefaultPredictor config (the default format)
    .venv/bin/python tools/export_student.py --config-file configs/synthetic/dino_r50_r18.py \\
        --checkpoint output/synthetic/dino_r50_r18/model_final.pth --output-dir output/synthetic/export
    # one traced graph, without this package at serving time
    .venv/bin/python tools/export_student.py ... --format onnx          # student.onnx, onnxruntime
    .venv/bin/python tools/export_student.py ... --format torchscript   # student.ts, torch.jit.load

``checkpoint`` writes student.pth, student_model.yaml and predictor.yaml (served by
``kddetr.export.StudentPredictor``, a DefaultPredictor). ``onnx`` and ``torchscript`` write one
graph traced at a fixed input size (``--size H W``; default: the size of the config's first test
image after its test resize, e.g. 128 x 128 for the synthetic data) and ``<graph>.json`` with its input
contract (``kddetr/deploy.py``): float32 ``[1, 3, H, W]`` pixels 0-255 in the model's channel
order (RGB), outputs ``boxes [k, 4]`` xyxy pixels, ``scores [k]``, ``labels [k]``. The tool then runs
the exported graph on the config's first test image and prints how far it is from PyTorch
(exit status 1 beyond 1e-3 in scores or 0.5 px in boxes).

A single-model config (e.g. configs/synthetic/dino_r18.py) exports that model to onnx/torchscript.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402
from detectron2.config import instantiate  # noqa: E402

from kddetr.checkpoint import CheckpointError, load_strict  # noqa: E402
from kddetr.config import apply_user_dataset, config_argument_parser, load_config  # noqa: E402
from kddetr.deploy import FORMATS, example_input, export_detector, parity  # noqa: E402
from kddetr.export import eval_resize, export_student, served_model  # noqa: E402


def first_test_image(cfg):
    """The config's first test image: (file name, (H, W) after the config's test resize)."""
    from detectron2.data import DatasetCatalog
    from detectron2.data.transforms import ResizeShortestEdge

    names = cfg.dataloader.test.dataset.names
    first = DatasetCatalog.get(names if isinstance(names, str) else names[0])[0]
    short, longest = eval_resize(cfg)
    return first["file_name"], ResizeShortestEdge.get_output_shape(first["height"], first["width"], short, longest)


def parity_image(model, file_name: str, size):
    """``file_name`` resized to ``size`` as the graph's input (``[1, 3, H, W]`` float, the model's
    channel order), or pixel noise when the file cannot be read; and what it is, for the log."""
    import cv2

    bgr = cv2.imread(file_name) if file_name and os.path.isfile(file_name) else None
    if bgr is None:
        return example_input(*size), "pixel noise (no readable test image)"
    image = cv2.resize(bgr, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    if getattr(model, "input_format", "RGB") == "RGB":
        image = image[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(image).transpose(2, 0, 1)).float()[None], os.path.basename(file_name)


#: the exported graph must give PyTorch's scores within this, and its boxes within this many pixels
SCORE_TOL, BOX_TOL_PX = 1e-3, 0.5


def export_graph(cfg, checkpoint: str, output_dir: str, fmt: str, size) -> str:
    """Load the student (or the single model) strictly from ``checkpoint``, trace it to ``fmt`` and
    check the written graph against PyTorch on the config's first test image."""
    model_cfg, state = served_model(cfg, checkpoint)
    model = instantiate(model_cfg)
    load_strict(model, checkpoint, state, key="--checkpoint",
                fix="Export with the config the checkpoint was trained with (and the same key=value overrides).")
    model.eval()
    try:
        file_name, default_size = first_test_image(cfg)
    except (FileNotFoundError, KeyError, AssertionError, IndexError):
        file_name, default_size = "", None
    if size is None and default_size is None:
        raise ValueError("the config's test dataset is not on disk, so the export size cannot be read from it; "
                         "give --size H W")
    height, width = size or default_size
    name = "student" if "student" in cfg.model else "model"
    path = export_detector(model, os.path.join(output_dir, name + FORMATS[fmt]), height, width, fmt)
    image, source = parity_image(model, file_name, (height, width))
    diff = parity(model, path, image)
    print(f"parity with PyTorch at {height} x {width} on {source}: max |score| diff {diff['score']:.1e}; over the "
          f"{diff['share']:.0%} of detections whose rank no rounding can change, max |box| diff {diff['box_px']:.1e} "
          f"px, labels equal {diff['labels_equal']:.0%}")
    if diff["score"] > SCORE_TOL or diff["box_px"] > BOX_TOL_PX or diff["labels_equal"] < 1.0:
        raise SystemExit(f"export_student.py: {path} does not reproduce PyTorch's predictions (tolerances: scores "
                         f"{SCORE_TOL}, boxes {BOX_TOL_PX} px, equal labels); the file is kept for inspection.")
    return path


def main() -> None:
    parser = config_argument_parser(__doc__, "the config the checkpoint was trained with",
                                    "key=value overrides used at training time (e.g. model sizes)")
    parser.add_argument("--checkpoint", required=True, help="model_final.pth of a training run")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--format", default="checkpoint", choices=["checkpoint", *FORMATS],
                        help="checkpoint: student.pth + DefaultPredictor config; onnx/torchscript: one traced graph")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="input size the graph is traced at (onnx/torchscript)")
    parser.add_argument("--device", default="cpu", help="MODEL.DEVICE of the predictor config")
    args = parser.parse_args()
    cfg = load_config(args.config_file, args.opts)
    apply_user_dataset(cfg)  # user_dataset.* overrides set the classes, as they did for training
    if args.format == "checkpoint" and args.size:
        raise SystemExit("export_student.py: --size sets the input size of an onnx/torchscript graph; the checkpoint "
                         "format is served by DefaultPredictor, which resizes each image itself (INPUT.MIN_SIZE_TEST).")
    try:
        if args.format == "checkpoint":
            path = export_student(cfg, args.checkpoint, args.output_dir, args.device)
            print(f"wrote {os.path.dirname(path)}/{{student.pth, student_model.yaml, predictor.yaml}}")
        else:
            path = export_graph(cfg, args.checkpoint, args.output_dir, args.format,
                                tuple(args.size) if args.size else None)
            print(f"wrote {path} and {path}.json (the input contract)")
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"export_student.py: {e}") from None


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("export_student.py"):  # the project's refusals: one message, no traceback
        main()
