"""Training defaults with the keys detrex users know."""
from omegaconf import OmegaConf


def train_defaults(*, output_dir, max_iter, init_checkpoint="", device="cuda", eval_period=5000,
                   checkpoint_period=5000, log_period=20):
    return OmegaConf.create(dict(
        output_dir=output_dir,
        init_checkpoint=init_checkpoint,
        max_iter=max_iter,
        amp=dict(enabled=False),
        ddp=dict(broadcast_buffers=False, find_unused_parameters=False, fp16_compression=False),
        checkpointer=dict(period=checkpoint_period, max_to_keep=100),
        eval_period=eval_period,
        log_period=log_period,
        # losses in metrics.json: each the mean over the log_period iterations before it (the trainer sums them
        # on the device, one copy to the host per write); > 1: the median of that many such means
        metrics_window=1,
        clip_grad=dict(enabled=True, params=dict(max_norm=0.1, norm_type=2.0)),  # float: norm_type=inf works
        model_ema=dict(enabled=False, decay=0.999, device="", use_ema_for_evaluation=False),
        device=device,
        seed=-1,
        max_unreadable_fraction=0.01,  # unreadable training images are skipped; past this share of those seen: stop
        cudnn_benchmark=False,
    ))


def user_dataset_keys():
    """Your own COCO-format data from the command line, e.g.
    ``user_dataset.train_json=/d/train.json user_dataset.train_images=/d/train
    user_dataset.test_json=/d/val.json user_dataset.test_images=/d/val``.
    train_net.py registers ``user_train``/``user_test``, points the loaders and the
    evaluator at them and sets every ``num_classes`` of the model from the json."""
    return OmegaConf.create(dict(train_json="", train_images="", test_json="", test_images=""))
