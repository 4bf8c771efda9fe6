"""DETR dataset mapper on Detectron2 transforms."""
from __future__ import annotations

import copy
import logging
from typing import Dict, List, Optional

import numpy as np
import torch
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from .unreadable import unreadable_marker

logger = logging.getLogger(__name__)


class DetrDatasetMapper:
    """Reads an image, applies DETR augmentation and builds the targets.

    Training applies ``augmentation`` or, with probability 0.5, ``augmentation_with_crop``
    (DETR's random-crop branch). Instances carry Detectron2's ``gt_boxes`` (absolute xyxy of the
    augmented image) and ``gt_classes``; the detector normalises them (``prepare_targets``).

    Args:
        augmentation: list of Detectron2 augmentations.
        augmentation_with_crop: the crop branch, or None.
        is_train: keep annotations and use random augmentation.
        img_format: ``"RGB"`` or ``"BGR"``, must match the model's ``input_format``.
        skip_unreadable: an image that cannot be read becomes a marker
            (:func:`~kddetr.data.unreadable.unreadable_marker`) that training drops and evaluation
            reports, instead of an error that ends the run.
    """

    def __init__(self, augmentation: List[T.Augmentation],
                 augmentation_with_crop: Optional[List[T.Augmentation]] = None,
                 is_train: bool = True, img_format: str = "RGB", skip_unreadable: bool = True):
        self.augmentation = T.AugmentationList(augmentation)
        self.augmentation_with_crop = T.AugmentationList(augmentation_with_crop) if augmentation_with_crop else None
        self.is_train = is_train
        self.img_format = img_format
        self.skip_unreadable = skip_unreadable
        mode = "training" if is_train else "inference"
        logger.info(f"[DetrDatasetMapper] {mode} augmentation: {augmentation}; crop branch: {augmentation_with_crop}")

    def __call__(self, dataset_dict: Dict) -> Dict:
        dataset_dict = copy.deepcopy(dataset_dict)
        file_name = dataset_dict["file_name"]
        try:
            image = utils.read_image(file_name, format=self.img_format)
        except Exception as e:  # PIL raises several types for missing or corrupt files
            reason = f"DetrDatasetMapper: cannot read image '{file_name}' ({type(e).__name__}: {e})"
            if self.skip_unreadable:
                return unreadable_marker(dataset_dict, reason)
            raise OSError(f"{reason}. Check that the file exists and is a valid image, or remove it from the "
                          "annotation json.") from e
        utils.check_image_size(dataset_dict, image)

        augs = self.augmentation
        if self.is_train and self.augmentation_with_crop is not None and np.random.rand() > 0.5:
            augs = self.augmentation_with_crop
        aug_input = T.AugInput(image)
        transforms = augs(aug_input)
        image = aug_input.image
        h, w = image.shape[:2]
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))

        if not self.is_train:
            dataset_dict.pop("annotations", None)
            return dataset_dict
        annos = [
            utils.transform_instance_annotations(obj, transforms, (h, w))
            for obj in dataset_dict.pop("annotations", [])
            if obj.get("iscrowd", 0) == 0
        ]
        instances = utils.filter_empty_instances(utils.annotations_to_instances(annos, (h, w)))
        dataset_dict["instances"] = instances
        return dataset_dict
