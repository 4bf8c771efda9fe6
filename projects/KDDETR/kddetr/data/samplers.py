"""A training sampler whose position is part of the checkpoint."""
from __future__ import annotations

import itertools
from typing import Dict

from detectron2.data.samplers import TrainingSampler


class ResumableTrainingSampler(TrainingSampler):
    """Detectron2's infinite, seeded, shuffled ``TrainingSampler`` that can start at an offset.

    ``state_dict()`` holds the seed; :meth:`set_position` skips the samples this rank already
    consumed. After ``--resume`` the loader yields the batches an uninterrupted run would have
    yielded next (exact with one aspect-ratio bucket, as detectron2 shards the index stream
    across loader workers in whole batches; with several buckets the same index stream
    continues but partly filled buckets start empty). Call before the loader is iterated.
    """

    def __init__(self, size: int, shuffle: bool = True, seed=None):
        super().__init__(size, shuffle, seed)
        self.start = 0

    def __iter__(self):
        yield from itertools.islice(self._infinite_indices(), self._rank + self.start * self._world_size, None,
                                    self._world_size)

    def set_position(self, samples_per_rank: int) -> None:
        self.start = samples_per_rank

    def state_dict(self) -> Dict[str, int]:
        return {"seed": self._seed}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self._seed = int(state["seed"])
