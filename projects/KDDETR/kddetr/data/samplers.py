"""A training sampler whose position is part of the checkpoint, and per-sample random streams
that make a resumed run draw the augmentations an uninterrupted run would have drawn."""
from __future__ import annotations

import itertools
import random
from typing import Callable, Dict, Optional

import numpy as np
from detectron2.data.samplers import TrainingSampler
from torch.utils.data import Dataset


def stream_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed derived from non-negative integers (e.g. base seed, iteration,
    rank): the seed of one independent random stream, the same whenever the keys are."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0]) >> 1


class SampleIndex(int):
    """A dataset index that also carries the sampler's seed and its position in the sample
    stream, so that the sample's random augmentation can be derived from them
    (:class:`SeededMapDataset`). Behaves as the plain index everywhere else."""

    seed: int
    position: int

    def __new__(cls, index: int, seed: int, position: int) -> "SampleIndex":
        obj = super().__new__(cls, index)
        obj.seed, obj.position = int(seed), int(position)
        return obj


class ResumableTrainingSampler(TrainingSampler):
    """Detectron2's infinite, seeded, shuffled ``TrainingSampler`` that can start at an offset.

    ``state_dict()`` holds the seed; :meth:`set_position` skips the samples this rank already
    consumed. After ``--resume`` the loader of :func:`~kddetr.data.build_train_loader` yields
    the batches an uninterrupted run would have yielded next, whatever the number of loader
    workers (exact with one aspect-ratio bucket; with several buckets the same sample stream
    continues but partly filled buckets start empty). Call before the loader is iterated.

    Indices are :class:`SampleIndex` carrying (seed, position in the stream of all ranks), so the
    augmentation of a sample does not depend on the loader worker, the rank or an interruption.
    """

    def __init__(self, size: int, shuffle: bool = True, seed=None):
        super().__init__(size, shuffle, seed)
        self.start = 0

    def __iter__(self):
        stream = itertools.islice(enumerate(self._infinite_indices()), self._rank + self.start * self._world_size,
                                  None, self._world_size)
        for position, index in stream:
            yield SampleIndex(index, self._seed, position)

    def set_position(self, samples_per_rank: int) -> None:
        self.start = samples_per_rank

    def state_dict(self) -> Dict[str, int]:
        return {"seed": self._seed}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self._seed = int(state["seed"])


class SeededMapDataset(Dataset):
    """``mapper(dataset[i])`` with Python's and NumPy's global random state (which Detectron2's
    augmentations and the DETR mapper draw from) seeded from the sample's :class:`SampleIndex`
    before each call: a sample is augmented the same way in an uninterrupted and in a resumed
    run, whichever loader worker or process maps it. Plain ``int`` indices (another sampler) are
    mapped without reseeding.

    Args:
        dataset: map-style dataset of dataset dicts (e.g. Detectron2's ``DatasetFromList``).
        mapper: the dataset mapper; it must not return None (the DETR mapper never does).
    """

    def __init__(self, dataset: Dataset, mapper: Callable[[Dict], Optional[Dict]]):
        self.dataset, self.mapper = dataset, mapper

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> Dict:
        if isinstance(idx, SampleIndex):
            seed = stream_seed(idx.seed, idx.position)
            random.seed(seed)
            np.random.seed(seed % 2**32)
        data = self.mapper(self.dataset[int(idx)])
        if data is None:
            raise ValueError(f"The dataset mapper returned None for sample {int(idx)}; SeededMapDataset needs a "
                             "mapper that always returns a dict (filter the dataset instead).")
        return data
