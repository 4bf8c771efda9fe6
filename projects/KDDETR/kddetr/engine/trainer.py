"""The training loop: Detectron2's SimpleTrainer with AMP, gradient clipping and loss checks."""
from __future__ import annotations

import logging
import time
from typing import Dict, Optional

import torch
from detectron2.engine import SimpleTrainer
from torch import Tensor, nn

from ..data.samplers import stream_seed
from ..data.unreadable import UnreadableImages
from ..errors import NonFiniteError, Refusal


class _RefusalsWithoutTraceback(logging.Filter):
    """Detectron2's training loop logs every exception of a step with its traceback before re-raising it;
    a refusal (the non-finite stop, an unusable input) is its own message, so its record keeps one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, Refusal):
            record.msg, record.args, record.exc_info, record.exc_text = "%s", (error,), None, None
        return True


logging.getLogger("detectron2.engine.train_loop").addFilter(_RefusalsWithoutTraceback())


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


class Trainer(SimpleTrainer):
    """One optimisation step per iteration, as detrex's trainer.

    Every step is checked before it is applied: the loss terms and the gradient norm must be
    finite (a copy of a few booleans to the host), otherwise training stops *before*
    ``optimizer.step()`` with a message naming the terms or the norm, the iteration and the last
    good checkpoint, so the weights stay as they were. Under a CUDA ``GradScaler`` (AMP, fp16)
    non-finite gradients are the scaler's business: it skips the step and lowers the scale.

    The step's random numbers (DINO's denoising noise, dropout) come from torch's global
    generator seeded from (``seed``, iteration, rank) at the start of the step, so a resumed run
    draws what an uninterrupted one would have; ``seed`` is in the checkpoint.

    What a step waits for on the host: the Hungarian matchers (one copy of the cost matrices to
    the CPU per criterion or distiller, since scipy runs there, and one non-blocking copy of
    the assignments back), this check, and every ``gather_metric_period`` iterations (train.log_period)
    the metrics: the loss terms, averaged on the device over the iterations since the last write, in one
    copy (Detectron2's writer copies every term of every iteration, a host sync each). Index tensors are
    built on the device (denoising) or copied once per matching (assignments), targets once per batch.

    Args:
        model, data_loader, optimizer: as for ``SimpleTrainer``.
        amp: run forward under ``torch.autocast`` with a ``GradScaler`` (CUDA: fp16; CPU: bf16).
        clip_grad_params: kwargs of ``torch.nn.utils.clip_grad_norm_`` (``max_norm``,
            ``norm_type``), or None to disable clipping.
        device: where the model runs (selects the autocast device type).
        gather_metric_period: write the losses to the metric storage every this many iterations.
        sampler: the loader's :class:`~kddetr.data.samplers.ResumableTrainingSampler`; its seed
            goes into the checkpoint and a resumed run continues the same sample stream.
        samples_per_iter: images per iteration on this process (to position the sampler).
        seed: base seed of the per-step random streams.
        max_unreadable_fraction: unreadable images of a batch are dropped (each logged once, counted as
            ``unreadable_images`` in the metrics); past this fraction of the images seen the run stops.
    """

    def __init__(self, model: nn.Module, data_loader, optimizer, amp: bool = False,
                 clip_grad_params: Optional[Dict] = None, device: str = "cuda", gather_metric_period: int = 1,
                 sampler=None, samples_per_iter: int = 0, seed: int = 0, max_unreadable_fraction: float = 0.01):
        super().__init__(model=model, data_loader=data_loader, optimizer=optimizer,
                         gather_metric_period=gather_metric_period)
        self.amp = amp
        self.device_type = torch.device(device).type
        self.clip_grad_params = clip_grad_params
        self.grad_scaler = torch.amp.GradScaler(self.device_type, enabled=amp and self.device_type == "cuda")
        self.sampler, self.samples_per_iter = sampler, samples_per_iter
        self.seed = int(seed)
        self.unreadable = UnreadableImages(max_unreadable_fraction)
        #: the run's checkpointer, named in the message of a stopped step (set by train_net.py)
        self.checkpointer = None
        # only what the optimizer updates is clipped and checked (a distiller's teacher holds no gradients)
        self._clip_params = [p for g in optimizer.param_groups for p in g["params"]]
        # the loss terms summed on the device since the metrics were last written (_write_metrics)
        self._metric_keys, self._metric_sum, self._metric_count = None, None, 0

    def step_seed(self, stream: int) -> int:
        """Seed of random stream ``stream`` of this iteration on this process."""
        from detectron2.utils import comm

        return stream_seed(self.seed, stream, self.iter, comm.get_rank())

    def run_step(self) -> None:
        assert self.model.training, "[Trainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        skipped = self.unreadable.skipped
        data = self.unreadable.drop(data)  # a marker keeps its place in the stream, its image is left out
        if self.unreadable.skipped > skipped:
            self.storage.put_scalar("unreadable_images", self.unreadable.skipped, smoothing_hint=False)
        data_time = time.perf_counter() - start

        torch.manual_seed(self.step_seed(0))  # all devices: denoising noise, dropout
        amp_dtype = torch.float16 if self.device_type == "cuda" else torch.bfloat16
        with torch.autocast(self.device_type, dtype=amp_dtype, enabled=self.amp):
            loss_dict = self.forward_model(data)
            losses = sum(loss_dict.values()) if isinstance(loss_dict, dict) else loss_dict
            if not isinstance(loss_dict, dict):
                loss_dict = {"total_loss": loss_dict}

        self.optimizer.zero_grad()
        self.grad_scaler.scale(losses).backward()
        self.grad_scaler.unscale_(self.optimizer)  # a no-op without a scaler
        grads = [p.grad for p in self._clip_params if p.grad is not None]
        norm_type = (self.clip_grad_params or {}).get("norm_type", 2.0)
        grad_norm = torch.nn.utils.get_total_norm(grads, norm_type) if grads else losses.new_zeros(())
        self._check_step(loss_dict, grad_norm)
        if self.clip_grad_params is not None:
            torch.nn.utils.clip_grads_with_norm_(self._clip_params, self.clip_grad_params["max_norm"], grad_norm)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()
        self._write_metrics(loss_dict, data_time)

    def _write_metrics(self, loss_dict: Dict[str, Tensor], data_time: float, prefix: str = "",
                       iter: Optional[int] = None) -> None:
        """Detectron2's metrics, written every ``gather_metric_period`` iterations and at the last one, with each
        loss term averaged over the iterations since the last write: summed on the device every step (no host
        sync) and copied to the host in one copy when written."""
        iter = self.iter if iter is None else iter
        keys, values = list(loss_dict), torch.stack([v.detach().float() for v in loss_dict.values()])
        if keys != self._metric_keys:  # other terms than the iterations before (none in practice): start again
            self._metric_keys, self._metric_sum, self._metric_count = keys, values, 1
        else:
            self._metric_sum, self._metric_count = self._metric_sum + values, self._metric_count + 1
        if (iter + 1) % self.gather_metric_period and iter != getattr(self, "max_iter", 0) - 1:
            return
        means = (self._metric_sum / self._metric_count).tolist()  # the one copy to the host
        self._metric_keys, self._metric_sum, self._metric_count = None, None, 0
        host = {k: torch.tensor(v, device="cpu") for k, v in zip(keys, means)}
        try:
            SimpleTrainer.write_metrics(host, data_time, iter, prefix)
        except Exception:
            logging.getLogger(__name__).exception("Exception in writing metrics: ")
            raise

    def _check_step(self, loss_dict: Dict[str, Tensor], grad_norm: Tensor) -> None:
        """Stop before the optimizer step when a loss term or the gradient norm is not finite
        (gradients only without a grad scaler, which skips such steps itself). With several processes
        the flags are reduced over them first (one small all-reduce), so every process stops at the same
        step with the same message, instead of one raising while the others wait in the next collective."""
        from detectron2.utils import comm

        values = torch.stack([v.detach().float() for v in loss_dict.values()] + [grad_norm.detach().float()])
        flags = torch.isfinite(values).to(torch.uint8)
        if comm.get_world_size() > 1:
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MIN)  # finite on every process
        finite = flags.bool().tolist()  # the check's host sync
        loss_ok, grad_ok = all(finite[:-1]), finite[-1] or self.grad_scaler.is_enabled()
        if loss_ok and grad_ok:
            return
        if not loss_ok:
            what = "non-finite loss terms: " + ", ".join(k for k, ok in zip(loss_dict, finite) if not ok)
            if comm.get_world_size() > 1:
                what += " (on at least one of the processes)"
        else:
            what = (f"the gradient norm is {values[-1].item()} although every loss term is finite "
                    f"(total {values[:-1].sum().item():.4g})")
        ckpt = self.checkpointer
        last = ckpt.get_checkpoint_file() if ckpt is not None and ckpt.has_checkpoint() else None
        raise NonFiniteError(
            f"Training stopped at iteration {self.iter}, before the optimizer step (the weights were not "
            f"changed): {what}. "
            + (f"The last good checkpoint is {last}: fix the cause and continue from it with --resume. "
               if last else "No checkpoint was written yet. ")
            + "Try a lower optimizer.lr, keep train.clip_grad.enabled=True, or disable train.amp.enabled."
        )

    def forward_model(self, data):
        """The training forward of one batch (a hook for subclasses that pass more inputs)."""
        return self.model(data)

    def state_dict(self) -> Dict:
        state = super().state_dict()
        state["seed"] = self.seed
        state["grad_scaler"] = self.grad_scaler.state_dict()
        state["unreadable"] = self.unreadable.state_dict()
        if self.sampler is not None:
            state["sampler"] = self.sampler.state_dict()
        return state

    def load_state_dict(self, state_dict: Dict) -> None:
        super().load_state_dict(state_dict)
        self.seed = int(state_dict.get("seed", self.seed))
        self.unreadable.load_state_dict(state_dict.get("unreadable", {}))
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
    and student see the same points). The generator is seeded from (seed, iteration, rank) every
    step, so each process draws its own points and ``--resume`` (with one process or several)
    draws the points an uninterrupted run would have drawn, with no generator state to save.
    The optimizer (built by train_net.py) holds everything trainable of the distiller.

    Args: as :class:`Trainer`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.points_generator = torch.Generator()

    def step_points(self) -> Dict[str, Tensor]:
        """This iteration's random distillation points on this process (CPU tensors by point set)."""
        self.points_generator.manual_seed(self.step_seed(1))
        return unwrap(self.model).sample_points(self.points_generator)

    def forward_model(self, data):
        return self.model(data, distill_points=self.step_points())
