"""Data loaders: COCO (Detectron2 builtin names) and the embedded synthetic dataset."""
from detectron2.config import LazyCall as L
from detectron2.data import build_detection_test_loader, build_detection_train_loader, get_detection_dataset_dicts
from detectron2.data import transforms as T
from detectron2.evaluation import COCOEvaluator
from omegaconf import OmegaConf

from kddetr.data import DetrDatasetMapper

COCO_SCALES = [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800]


def loaders(*, train_names, test_names, augmentation, test_augmentation, augmentation_with_crop=None,
            total_batch_size=16, num_workers=4):
    """Train and test loaders through DetrDatasetMapper (RGB) with the given augmentation lists, and the COCO
    evaluator of the test set."""
    return OmegaConf.create(dict(
        train=L(build_detection_train_loader)(
            dataset=L(get_detection_dataset_dicts)(names=train_names),
            mapper=L(DetrDatasetMapper)(
                augmentation=augmentation,
                augmentation_with_crop=augmentation_with_crop,
                is_train=True,
                img_format="RGB",
            ),
            total_batch_size=total_batch_size,
            num_workers=num_workers,
        ),
        test=L(build_detection_test_loader)(
            dataset=L(get_detection_dataset_dicts)(names=test_names, filter_empty=False),
            mapper=L(DetrDatasetMapper)(
                augmentation=test_augmentation,
                augmentation_with_crop=None,
                is_train=False,
                img_format="RGB",
            ),
            num_workers=num_workers,
        ),
        evaluator=L(COCOEvaluator)(dataset_name="${..test.dataset.names}"),
    ))


def detr_data(*, train_names, test_names, scales, max_size, crop_scales, crop_size, test_size, total_batch_size=16,
              num_workers=4):
    """DETR/detrex augmentation: flip + multi-scale resize, or (50%) resize-crop-resize
    (``crop_scales=None`` turns the crop branch off)."""
    return loaders(
        train_names=train_names, test_names=test_names,
        augmentation=[
            L(T.RandomFlip)(),
            L(T.ResizeShortestEdge)(short_edge_length=scales, max_size=max_size, sample_style="choice"),
        ],
        augmentation_with_crop=None if crop_scales is None else [
            L(T.RandomFlip)(),
            L(T.ResizeShortestEdge)(short_edge_length=crop_scales, sample_style="choice"),
            L(T.RandomCrop)(crop_type="absolute_range", crop_size=crop_size),
            L(T.ResizeShortestEdge)(short_edge_length=scales, max_size=max_size, sample_style="choice"),
        ],
        test_augmentation=[L(T.ResizeShortestEdge)(short_edge_length=test_size, max_size=max_size)],
        total_batch_size=total_batch_size, num_workers=num_workers,
    )


def coco_detr_data(*, total_batch_size=16, num_workers=4):
    """COCO 2017 with detrex's DETR augmentation (set $DETECTRON2_DATASETS to your COCO root)."""
    return detr_data(train_names="coco_2017_train", test_names="coco_2017_val", scales=COCO_SCALES, max_size=1333,
                     crop_scales=[400, 500, 600], crop_size=(384, 600), test_size=800,
                     total_batch_size=total_batch_size, num_workers=num_workers)


def synthetic_detr_data(*, total_batch_size=8, num_workers=2):
    """The embedded synthetic shapes (128 x 128 images): flip and multi-scale resize. No crop
    branch: at 128 px a crop mostly cuts objects, and it slowed learning in our CPU runs."""
    return detr_data(train_names="synthetic_train", test_names="synthetic_val", scales=[96, 112, 128, 144, 160],
                     max_size=256, crop_scales=None, crop_size=None, test_size=128,
                     total_batch_size=total_batch_size, num_workers=num_workers)


def rtdetr_data(*, size=640, total_batch_size=16, num_workers=4):
    """RT-DETR's COCO pipeline where Detectron2 has its parts, at ``size`` x ``size``: photometric distortion
    (brightness, contrast, saturation; p 0.5), zoom-out (the image placed on a canvas up to 4x its size, p 0.5),
    a random crop (p 0.8), flip, and a resize to exactly ``size`` x ``size`` (also at test time). Differs from
    RT-DETR's: no hue jitter; Detectron2's relative-range crop instead of their IoU-constrained crop; no
    multi-scale batches and no final epochs without the strong augmentation (their ``stop_epoch`` policy)."""
    return loaders(
        train_names="coco_2017_train", test_names="coco_2017_val",
        augmentation=[
            L(T.RandomApply)(tfm_or_aug=L(T.RandomBrightness)(intensity_min=0.875, intensity_max=1.125), prob=0.5),
            L(T.RandomApply)(tfm_or_aug=L(T.RandomContrast)(intensity_min=0.5, intensity_max=1.5), prob=0.5),
            L(T.RandomApply)(tfm_or_aug=L(T.RandomSaturation)(intensity_min=0.5, intensity_max=1.5), prob=0.5),
            L(T.RandomApply)(tfm_or_aug=L(T.RandomExtent)(scale_range=(1.0, 4.0), shift_range=(1.0, 1.0)), prob=0.5),
            L(T.RandomApply)(tfm_or_aug=L(T.RandomCrop)(crop_type="relative_range", crop_size=(0.3, 0.3)), prob=0.8),
            L(T.RandomFlip)(),
            L(T.Resize)(shape=(size, size)),
        ],
        test_augmentation=[L(T.Resize)(shape=(size, size))],
        total_batch_size=total_batch_size, num_workers=num_workers,
    )
