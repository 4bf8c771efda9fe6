"""One unreadable image does not end a run: training skips it (logged once, counted, stopped past a
threshold), evaluation reports it and evaluates the rest, and resume stays exact with it in the data."""
import json

import pytest
from test_errors import write_user_coco
from test_train_net import FAST, ap_row, run

from kddetr.data.unreadable import UNREADABLE, UnreadableImages, unreadable_marker
from kddetr.errors import InputError


def _batch(*names):
    return [unreadable_marker({"file_name": n, "image_id": i}, f"cannot read image '{n}'") if n.startswith("bad")
            else {"file_name": n, "image_id": i} for i, n in enumerate(names)]


def test_training_drops_unreadable_images_logs_each_once_and_stops_past_the_threshold(caplog):
    images = UnreadableImages(max_fraction=0.01)
    with caplog.at_level("WARNING"):
        kept = images.drop(_batch("a", "bad1", "b"))
        images.drop(_batch("bad1", "c"))
    assert [d["file_name"] for d in kept] == ["a", "b"] and UNREADABLE not in kept[0]
    assert (images.seen, images.skipped) == (5, 2)
    assert caplog.text.count("cannot read image 'bad1'") == 1  # logged once, counted twice
    for _ in range(8):
        images.drop(_batch(*"xyzxyzxyzxyz", "bad2"))  # 10 skipped of 109 seen: at the floor of 10, not above
    with pytest.raises(InputError, match=r"11 of the 122 training images seen could not be read \(more than "
                                         r"train.max_unreadable_fraction=0.01\)"):
        images.drop(_batch(*"xyzxyzxyzxyz", "bad3"))
    with pytest.raises(InputError, match="Every image of this process's batch is unreadable"):
        UnreadableImages().drop(_batch("bad1", "bad2"))
    with pytest.raises(ValueError, match="between 0 and 1"):
        UnreadableImages(max_fraction=2)


def _dataset_with_a_broken_image(root):
    opts = []
    for split in ("train", "val"):
        path = write_user_coco(root, split, n=4)
        (root / split / "2.jpg").write_bytes(b"truncated")  # one of the four cannot be decoded
        opts += [f"user_dataset.{split if split == 'train' else 'test'}_json={path}",
                 f"user_dataset.{split if split == 'train' else 'test'}_images={root / split}"]
    return opts


def test_a_run_with_an_unreadable_image_trains_and_evaluates_the_rest(tmp_path):
    out = tmp_path / "out"
    log = run(["--config-file", "configs/synthetic/dino_r18.py", "train.max_iter=6", f"train.output_dir={out}",
               *[a for a in FAST if "dataset.names" not in a], *_dataset_with_a_broken_image(tmp_path)])
    assert log.count("cannot read image '" + str(tmp_path / "train" / "2.jpg")) == 1  # logged once
    assert "1 test images could not be read and are not evaluated" in log
    ap_row(log)  # the other three test images are evaluated
    rows = [json.loads(line) for line in open(out / "metrics.json")]
    counted = [r["unreadable_images"] for r in rows if "unreadable_images" in r]
    assert counted and counted[-1] >= 1
