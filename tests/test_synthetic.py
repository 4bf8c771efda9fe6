"""The synthetic dataset: deterministic, varied, valid COCO."""
import json
import subprocess
import sys

import numpy as np
from conftest import ROOT

from kddetr.data import synthetic


def test_render_is_deterministic_and_varied():
    a = synthetic.render_image(np.random.default_rng(4))
    b = synthetic.render_image(np.random.default_rng(4))
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    rng = np.random.default_rng(0)
    objects = [o for _ in range(300) for o in synthetic.render_image(rng)[1]]
    sides = np.array([max(o["bbox"][2:]) for o in objects])
    assert sides.min() < 10 and sides.max() > 50  # tiny to large
    assert {o["category"] for o in objects} == set(range(len(synthetic.CLASSES)))
    empty = sum(not synthetic.render_image(np.random.default_rng(s))[1] for s in range(300))
    assert 0 < empty < 30


def test_tool_writes_valid_coco(tmp_path):
    out = subprocess.run([sys.executable, "tools/make_synthetic_coco.py", "--root", str(tmp_path), "--num-train", "6",
                          "--num-val", "3", "--seed", "5"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    coco = json.load(open(tmp_path / "annotations" / "instances_train.json"))
    assert len(coco["images"]) == 6 and len(coco["categories"]) == 6
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 128 and y + h <= 128
    assert (tmp_path / "train" / coco["images"][0]["file_name"]).is_file()


def test_registered_data_is_unchanged():
    """The README's numbers were measured on this data: changing the generator must be deliberate
    (bump synthetic.VERSION, re-measure, then update this digest)."""
    import hashlib

    rng = np.random.default_rng(synthetic.SPLITS["val"][1])
    h = hashlib.sha256()
    for _ in range(5):
        img, objects = synthetic.render_image(rng)
        h.update(img.tobytes())
        h.update(repr(objects).encode())
    assert synthetic.VERSION == "v1"
    assert h.hexdigest() == "6ba5c38db547d4138d6a62cca657e4ded8713771aad6ec9b647028954011906c"


def test_harder_knobs_change_the_images_not_the_format():
    plain = synthetic.render_image(np.random.default_rng(3))
    hard = synthetic.render_image(np.random.default_rng(3), class_color_prob=0.0, max_distractors=3)
    assert not np.array_equal(plain[0], hard[0])
    assert all(set(o) == {"category", "bbox", "area"} for o in hard[1])
