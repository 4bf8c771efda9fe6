"""The training loop: Detectron2's SimpleTrainer with AMP, gradient clipping and loss checks."""
from __future__ import annotations

import time
from typing import Dict, Optional

import torch
from detectron2.engine import SimpleTrainer
from torch import Tensor, nn


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


class Trainer(SimpleTrainer):
    """One optimisation step per iteration, as detrex's trainer.

    Args:
        model, data_loader, optimizer: as for ``SimpleTrainer``.
        amp: run forward under ``torch.autocast`` with a ``GradScaler`` (CUDA: fp16; CPU: bf16).
        clip_grad_params: kwargs of ``torch.nn.utils.clip_grad_norm_`` (``max_norm``,
            ``norm_type``), or None to disable clipping.
        device: where the model runs (selects the autocast device type).
        gather_metric_period: write (and host-sync) the losses every this many iterations.
        sampler: the loader's :class:`~kddetr.data.samplers.ResumableTrainingSampler`; its seed
            goes into the checkpoint and a resumed run continues the same sample stream.
        samples_per_iter: images per iteration on this process (to position the sampler).
    """

    def __init__(self, model: nn.Module, data_loader, optimizer, amp: bool = False,
                 clip_grad_params: Optional[Dict] = None, device: str = "cuda", gather_metric_period: int = 1,
                 sampler=None, samples_per_iter: int = 0):
        super().__init__(model=model, data_loader=data_loader, optimizer=optimizer,
                         gather_metric_period=gather_metric_period)
        self.amp = amp
        self.device_type = torch.device(device).type
        self.clip_grad_params = clip_grad_params
        self.grad_scaler = torch.amp.GradScaler(self.device_type, enabled=amp and self.device_type == "cuda")
        self.sampler, self.samples_per_iter = sampler, samples_per_iter
        # only what the optimizer updates is clipped (a distiller's teacher holds no gradients)
        self._clip_params = [p for g in optimizer.param_groups for p in g["params"]]

    def run_step(self) -> None:
        assert self.model.training, "[Trainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        amp_dtype = torch.float16 if self.device_type == "cuda" else torch.bfloat16
        with torch.autocast(self.device_type, dtype=amp_dtype, enabled=self.amp):
            loss_dict = self.forward_model(data)
            losses = sum(loss_dict.values()) if isinstance(loss_dict, dict) else loss_dict
            if not isinstance(loss_dict, dict):
                loss_dict = {"total_loss": loss_dict}

        self.optimizer.zero_grad()
        self.grad_scaler.scale(losses).backward()
        if self.clip_grad_params is not None:
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self._clip_params, **self.clip_grad_params)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()
        self._write_metrics(loss_dict, data_time)

    def forward_model(self, data):
        """The training forward of one batch (a hook for subclasses that pass more inputs)."""
        return self.model(data)

    def _write_metrics(self, loss_dict: Dict[str, Tensor], data_time: float, prefix: str = "",
                       iter: Optional[int] = None) -> None:
        """Detectron2's metric writer (every ``gather_metric_period`` iterations, the only host
        sync of the step), plus a loss check that names the offending terms."""
        iter = self.iter if iter is None else iter
        if (iter + 1) % self.gather_metric_period == 0:
            finite = torch.isfinite(torch.stack([v.detach().float() for v in loss_dict.values()])).cpu()
            if not bool(finite.all()):
                bad = [k for k, ok in zip(loss_dict, finite.tolist()) if not ok]
                raise FloatingPointError(
                    f"Loss became non-finite at iteration {iter}: {', '.join(bad)}. The checkpoints "
                    "written so far are kept. Try a lower optimizer.lr, keep train.clip_grad.enabled=True, "
                    "or disable train.amp.enabled."
                )
        super()._write_metrics(loss_dict, data_time, prefix, iter)

    def state_dict(self) -> Dict:
        state = super().state_dict()
        state["grad_scaler"] = self.grad_scaler.state_dict()
        if self.sampler is not None:
            state["sampler"] = self.sampler.state_dict()
        return state

    def load_state_dict(self, state_dict: Dict) -> None:
        super().load_state_dict(state_dict)
        if "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
        if self.sampler is not None and "sampler" in state_dict:
            self.sampler.load_state_dict(state_dict["sampler"])
            # the checkpoint was written after iteration ``self.iter``: skip what it consumed
            self.sampler.set_position((self.iter + 1) * self.samples_per_iter)


class DistillTrainer(Trainer):
    """The trainer of a distiller (:class:`~kddetr.distill.KDDETR`).

    Each iteration it draws the step's random distillation points with its own generator and
    hands them to the model's training forward, which decodes them in its fused pass (teacher
    and student see the same points). The generator state is checkpointed, so ``--resume``
    continues with the points an uninterrupted run would have drawn. The optimizer (built by
    train_net.py) holds the student's parameters only.

    Args:
        seed: seed of the point generator (offset by the process rank).
        other args: as :class:`Trainer`.
    """

    def __init__(self, *args, seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        from detectron2.utils import comm

        self.points_generator = torch.Generator().manual_seed(int(seed) + comm.get_rank())

    def forward_model(self, data):
        distiller = unwrap(self.model)
        return self.model(data, distill_points=distiller.sample_points(self.points_generator))

    def state_dict(self) -> Dict:
        state = super().state_dict()
        state["points_generator"] = self.points_generator.get_state()
        return state

    def load_state_dict(self, state_dict: Dict) -> None:
        super().load_state_dict(state_dict)
        if "points_generator" in state_dict:
            self.points_generator.set_state(state_dict["points_generator"])
