"""Loading LazyConfig files the way every entry point does, and the checks run before anything is built.

:func:`load_config` is the one way ``train_net.py`` and every tool read a config file with
``key=value`` overrides; :func:`add_kddetr_config` adds the one yacs key ``DefaultPredictor``
needs to serve an exported student.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import inspect
import logging
import math
import os
import re
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from detectron2.config import CfgNode, LazyConfig
from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import ConfigError

logger = logging.getLogger(__name__)
_MISSING = object()


def _walk_keys(node, prefix: str = "") -> Iterator[str]:
    if isinstance(node, DictConfig):
        for k in node.keys():
            key = f"{prefix}.{k}" if prefix else str(k)
            yield key
            yield from _walk_keys(node._get_node(k), key)
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            key = f"{prefix}.{i}"
            yield key
            yield from _walk_keys(node._get_node(i), key)


def _is_target_argument(cfg: DictConfig, key: str) -> bool:
    """Whether ``key`` names a keyword argument that the config does not set but the callable of a
    LazyCall node accepts (e.g. ``model.allow_untrained_teacher`` of ``L(KDDETR)(...)``)."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, default=None) if parent_key else cfg
    if not isinstance(parent, DictConfig) or "_target_" not in parent:
        return False
    target = parent._target_
    if isinstance(target, str):
        from detectron2.utils.registry import locate

        try:
            target = locate(target)
        except Exception:
            return False
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return leaf in params and params[leaf].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                    inspect.Parameter.KEYWORD_ONLY)


def check_override_keys(cfg: DictConfig, overrides: Sequence[str], config_file: str) -> None:
    """Refuse ``key=value`` overrides whose key does not exist, naming close matches. A keyword
    argument of a LazyCall node's callable that the config leaves at its default counts as a key."""
    known = None
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False) is not _MISSING:
            continue
        if _is_target_argument(cfg, key):
            continue
        if known is None:
            known = list(_walk_keys(cfg))
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"Config key '{key}' does not exist in {config_file}.{hint} "
                       "Every run writes the full key list to train.output_dir/config.yaml.")


def _program() -> str:
    """The script being run (``train_net.py`` or a tool), for the command lines messages suggest."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name.endswith(".py") else "train_net.py"


def check_override_syntax(overrides: Sequence[str], config_file: str) -> None:
    """Refuse override words that are not ``key=value``: a flag written after the overrides (the
    argument parser reads every word after the first override as one, so ``--resume`` there would
    be taken for a config key), a word without ``=`` and a ``~key`` deletion. Raises ValueError."""
    overrides = list(overrides)
    for i, item in enumerate(overrides):
        if item.startswith("-") and not re.match(r"-[\d.]", item):
            words = [item]
            for word in overrides[i + 1:]:  # the flag's own arguments, such as the 2 of --num-gpus 2
                if "=" in word or word.startswith("-"):
                    break
                words.append(word)
            flag = " ".join(words)
            raise ValueError(
                f"'{item}' is a flag, but it was written after the key=value config overrides, where every word is "
                f"read as an override; flags go before the overrides: {_program()} --config-file {config_file} "
                f"{flag} key=value ...")
        if item.startswith("~"):
            raise ValueError(f"Config override '{item}': deleting a key is not supported; set it instead, "
                             f"e.g. {item[1:].split('=', 1)[0]}=null.")
        if "=" not in item:
            raise ValueError(
                f"Config override '{item}' is not of the form key=value. Write each override as one word with no "
                "spaces around '=' (e.g. train.max_iter=1000), and quote a value that holds spaces.")


# leaf keys that take one string or a list of strings (Detectron2 dataset names)
_STR_OR_LIST_KEYS = ("names",)
# keys whose None in a config means "the default" (KD-DETR's class term's temperature and weight,
# CLASS_TERM_DEFAULTS) and that take a number (a float) otherwise
_NUMBERS_OR_DEFAULT = (r"model\.loss\.temperature", r"model\.loss\.weights\.cls")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"str {value!r}"
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value)
    return f"{type(value).__name__} {value}"


def _original(cfg: DictConfig, key: str) -> Tuple[bool, Any]:
    """``(checked, value)`` for the config's entry at ``key``: ``checked`` is False where any value
    is accepted (a missing entry, an interpolation such as ``"${..lr}"``, or None); ``value`` is
    the raw value, or the DictConfig/ListConfig node of a subtree."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, default=None) if parent_key else cfg
    if isinstance(parent, ListConfig) and leaf.lstrip("-").isdigit():
        index = int(leaf)
        if not -len(parent) <= index < len(parent):
            return False, None
        node = parent._get_node(index)
    elif isinstance(parent, DictConfig) and leaf in parent:
        node = parent._get_node(leaf)
    else:
        return False, None
    if node is None or node._is_interpolation() or node._is_none():
        return False, None
    return True, node if OmegaConf.is_config(node) else node._value()


def _check_value(item: str, key: str, given: Any, original: Any, config_file: str) -> Tuple[bool, Any]:
    """Check one override's parsed value against the config's value; returns ``(converted, value)``.
    Raises ValueError naming the key, the expected type, the value given and an example fix."""
    text = item.split("=", 1)[1]
    if isinstance(given, str) and "${" in given:
        return False, given  # an interpolation: resolved when the config is read
    leaf = key.rpartition(".")[2]
    if leaf in _STR_OR_LIST_KEYS and isinstance(original, (str, ListConfig)) and \
            (isinstance(given, str) or (isinstance(given, list) and all(isinstance(v, str) for v in given))):
        return False, given  # one dataset name or a list of them
    if isinstance(original, DictConfig):
        return False, given  # a LazyCall subtree: may be replaced by anything, null included
    elif isinstance(original, ListConfig):
        if given is None or isinstance(given, (list, tuple)):
            return False, given
        example = ",".join(str(v) for v in OmegaConf.to_container(original))
        kind, hint = "a list", f"Give a list in brackets, e.g. {key}=[{example}]"
    elif isinstance(original, bool):
        if isinstance(given, bool):
            return False, given
        kind, hint = "a bool", f"Give True or False, e.g. {key}={not original}"
    elif isinstance(original, int):
        if isinstance(given, int) and not isinstance(given, bool):
            return False, given
        if isinstance(given, float) and math.isfinite(given) and given == int(given):
            return True, int(given)  # 1e5 or 3.0
        example = int(given) if isinstance(given, float) and math.isfinite(given) else original
        kind, hint = "an int", f"Give an integer, e.g. {key}={example}"
    elif isinstance(original, float):
        if isinstance(given, float):
            return False, given
        if isinstance(given, int) and not isinstance(given, bool):
            return True, float(given)
        kind, hint = "a float", f"Give a number, e.g. {key}={original}"
    elif isinstance(original, str):
        if isinstance(given, str):
            return False, given
        if isinstance(given, (bool, int, float)):
            return True, text.strip()  # the text as written: train.output_dir=5 is the folder '5'
        kind = "a string"
        if given is None:
            hint = f"Give a string, e.g. {key}='' for an empty one"
        else:
            hint = f"Quote a string that holds brackets, braces or commas, e.g. {key}='{text}'"
    else:
        return False, given  # a class, a function or another object: not checked
    raise ValueError(f"Config override '{item}': {key} is {kind} in {config_file} (value {original!r}), got "
                     f"{_describe(given)}. {hint}.")


def check_override_values(cfg: DictConfig, overrides: Sequence[str], config_file: str) -> Dict[str, Any]:
    """Check the value of every ``key=value`` override against the type of the config's value at
    that key, parsing each value as Detectron2's ``LazyConfig.apply_overrides`` does (Hydra's
    override grammar: ``abc`` is a str, ``3.5`` a float, ``3`` an int, ``null`` None, ``[1,2]`` a
    list, ``True`` a bool).

    Rules, by the type of the config's value:

    * int: an int; a float with an integral value (``1e5``, ``3.0``) is converted. Not a bool.
    * float: a float, or an int (converted to float). Not a bool.
    * bool: True or False only.
    * str: a str; a number or bool is taken as the text written (``train.output_dir=5`` is ``'5'``).
      Not null (give ``key=''``) nor a list or dict. Dataset ``names`` also take a list of strings.
    * list: a list, or null.
    * a dict (a LazyCall subtree), None, an interpolation, or any other object (a class, a
      function): anything.

    An interpolation given as the value (``key=${other.key}``) is always accepted. Raises ValueError
    with one message naming the key, the expected type, the value given and an example fix.
    Returns ``{key: value}`` for the overrides whose value was converted, the last override of a key
    winning (:func:`load_config` sets these after applying the overrides).
    """
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.errors import OverrideParseException
    except ImportError:  # Detectron2 then parses values with ast.literal_eval: nothing to compare with
        return {}
    parser = OverridesParser.create()
    converted: Dict[str, Any] = {}
    for item in overrides:
        try:
            override = parser.parse_overrides([item])[0]
        except OverrideParseException as e:
            reason = str(e).splitlines()[-2] if len(str(e).splitlines()) > 1 else str(e)
            raise ValueError(f"Config override '{item}' cannot be parsed ({reason.strip()}). Quote a value that "
                             f"holds characters such as [ ] {{ }} ( ) , or spaces, e.g. key='a,b'.") from None
        key = override.key_or_group
        if override.is_sweep_override():
            raise ValueError(f"Config override '{item}': a value with commas is a list of runs (a Hydra sweep), "
                             f"which is not supported. Put a list in brackets ({key}=[{item.split('=', 1)[1]}]) or "
                             f"quote a string ({key}='{item.split('=', 1)[1]}').")
        checked, original = _original(cfg, key)
        if not checked and any(re.fullmatch(p, key) for p in _NUMBERS_OR_DEFAULT) and override.value() is not None:
            given = override.value()
            if isinstance(given, bool) or not isinstance(given, (int, float)):
                raise ValueError(f"Config override '{item}': {key} is a number (None in {config_file}: the class "
                                 f"term's default), got {_describe(given)}. Give a number, e.g. {key}=1.0, or "
                                 f"{key}=null for the default.")
            checked, original = True, 1.0  # a float: an int given is converted
        was_converted, value = _check_value(item, key, override.value(), original, config_file) if checked \
            else (False, None)
        if was_converted:
            converted[key] = value
        else:
            converted.pop(key, None)
    return converted


def load_config(path: str, opts: Sequence[str] = ()) -> DictConfig:
    """Load the LazyConfig file ``path`` and apply ``opts`` (``key=value`` strings, Detectron2's
    override syntax), after refusing overrides that are not ``key=value`` (such as a flag written
    after them, :func:`check_override_syntax`), whose key does not exist (naming close matches,
    :func:`check_override_keys`) or whose value does not fit the config's value at that key
    (:func:`check_override_values`). Every refusal is one ValueError/KeyError raised before
    anything is built."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file '{path}' does not exist. Paths are relative to the directory you run "
                                "from; the configs live in configs/ at the repository root.")
    cfg = LazyConfig.load(path)
    opts = list(opts)
    check_override_syntax(opts, path)
    check_override_keys(cfg, opts, path)
    converted = check_override_values(cfg, opts, path)
    cfg = LazyConfig.apply_overrides(cfg, opts)
    for key, value in converted.items():
        OmegaConf.update(cfg, key, value, merge=True)
    return cfg


def config_argument_parser(description: str, config_help: str,
                           opts_help: str = "key=value config overrides") -> argparse.ArgumentParser:
    """The command line every tool shares with ``train_net.py``: ``--config-file FILE`` and trailing
    ``key=value`` overrides (for :func:`load_config`); the tool adds its own options."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help=config_help)
    parser.add_argument("opts", nargs="*", help=opts_help)
    return parser


def add_kddetr_config(cfg: CfgNode) -> None:
    """Add ``MODEL.KDDETR.MODEL_CONFIG`` to a yacs config: the LazyConfig file whose ``model`` the
    ``KDDETRStudent`` (or ``KDDETR``) meta-architecture instantiates."""
    cfg.MODEL.KDDETR = CfgNode()
    cfg.MODEL.KDDETR.MODEL_CONFIG = ""


def _num_classes_keys(node) -> List[str]:
    """Paths of every ``num_classes`` key under ``node`` that holds a value, not an
    interpolation such as ``"${..num_classes}"`` (model, or teacher and student)."""
    keys = []
    for key in _walk_keys(node):
        parent_key, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(node, parent_key) if parent_key else node
        if leaf == "num_classes" and not OmegaConf.is_interpolation(parent, leaf):
            keys.append(key)
    return keys


def set_num_classes(node, num_classes: int) -> List[str]:
    """Set every ``num_classes`` of ``node``, leaving interpolations pointing at them; returns the paths."""
    keys = _num_classes_keys(node)
    for key in keys:
        OmegaConf.update(node, key, num_classes, merge=False)
    return keys


def apply_user_dataset(cfg: DictConfig) -> None:
    """Register ``cfg.user_dataset`` (if set) and point loaders, evaluator and classes at it."""
    from .data import register_user_coco

    ud = cfg.get("user_dataset")
    if not ud or not (ud.get("train_json") or ud.get("test_json")):
        return
    classes = None
    for split, loader in (("train", "train"), ("test", "test")):
        json_file, images = ud.get(f"{split}_json"), ud.get(f"{split}_images")
        if not json_file:
            continue
        if not images:
            raise ValueError(f"user_dataset.{split}_json is set but user_dataset.{split}_images is not.")
        names = register_user_coco(f"user_{split}", json_file, images)
        if classes is not None and names != classes:
            raise ValueError(f"user_dataset: train and test jsons have different categories: {classes} vs {names}")
        classes = names
        cfg.dataloader[loader].dataset.names = f"user_{split}"
    changed = set_num_classes(cfg.model, len(classes))
    logger.info(f"user_dataset: {len(classes)} classes; set {', '.join('model.' + c for c in changed)}")


def check_device(device: str, num_gpus: int = 1) -> None:
    """``train.device`` must exist here; ``--num-gpus N`` with CUDA needs N visible GPUs."""
    if torch.device(device).type != "cuda":
        return
    if not torch.cuda.is_available():
        raise RuntimeError(f"train.device='{device}' but CUDA is not available on this machine. "
                           "Add train.device=cpu to the command line to run on the CPU.")
    if num_gpus > torch.cuda.device_count():
        raise RuntimeError(f"--num-gpus {num_gpus} but this machine has {torch.cuda.device_count()} visible CUDA "
                           "devices. Lower --num-gpus (or check CUDA_VISIBLE_DEVICES).")


#: an ImageNet backbone file: Detectron2's ``R-<depth>.pkl``, or RT-DETR's ResNet-vd converted to ``R-<depth>-vd.pth``
_IMAGENET_BACKBONE = re.compile(r"R-(\d+)(\.pkl|-vd\.pth)$")


def _missing_local_file(path: str) -> bool:
    """A local path that is set but not a file (URLs and ``detectron2://`` paths are fetched later)."""
    return bool(path) and "://" not in path and not os.path.isfile(path)


def directory_given(path: str, key: str) -> Optional[str]:
    """What to say when ``key``'s ``path`` is a directory (it exists, but a checkpoint is a file)."""
    if not (path and os.path.isdir(path)):
        return None
    inside = os.path.join(path, "model_final.pth")
    hint = f": {key}={inside}" if os.path.isfile(inside) else " (e.g. its model_final.pth)"
    return f"{key} '{path}' is a directory, not a checkpoint file; give the checkpoint file inside it{hint}."


def is_backbone_pretraining(path: str) -> bool:
    """A backbone-only initialisation (ImageNet ``R-<depth>.pkl``, ``synthetic-backbone://R-<depth>``):
    what a config trains from, never weights to evaluate."""
    from .data.backbones import SCHEME  # here: the data package is not needed to load a config

    return bool(_IMAGENET_BACKBONE.search(path)) or path.startswith(SCHEME)


def _missing_init_checkpoint(path: str) -> Optional[str]:
    """What is wrong with ``train.init_checkpoint`` and how to fix it, or None."""
    if not _missing_local_file(path):
        return None
    if directory_given(path, "train.init_checkpoint"):
        return directory_given(path, "train.init_checkpoint")
    backbone = _IMAGENET_BACKBONE.search(path)
    if backbone and backbone.group(2) == "-vd.pth":
        return (f"train.init_checkpoint '{path}' (the ImageNet ResNet-{backbone.group(1)}-vd backbone) does not exist: "
                f"convert RT-DETR's ImageNet ResNet{backbone.group(1)}_vd file into it with 'tools/convert_rtdetr.py "
                f"--backbone --config-file <this config> --input <file> --output {path}', or set "
                "train.init_checkpoint='' to start from random weights.")
    if backbone:
        return (f"train.init_checkpoint '{path}' (the ImageNet ResNet-{backbone.group(1)} backbone) does not exist: "
                f"convert torchvision's ImageNet resnet{backbone.group(1)} into it with "
                f"'tools/convert_torchvision.py --depth {backbone.group(1)} --output {path}', or set "
                "train.init_checkpoint='' to start from random weights.")
    return (f"train.init_checkpoint '{path}' does not exist: point it at a checkpoint file, or set "
            "train.init_checkpoint='' to start from random weights.")


def check_init_checkpoint(path: str) -> None:
    """A local init checkpoint must exist (URLs and detectron2:// paths are fetched by the checkpointer)."""
    problem = _missing_init_checkpoint(path)
    if problem:
        raise FileNotFoundError(problem)


def _missing_datasets(cfg: DictConfig, splits: Tuple[str, ...] = ("train", "test")) -> List[str]:
    """Registered datasets of the ``splits``' loaders whose annotation json is not on disk (datasets generated
    on first use, such as the synthetic ones, are skipped)."""
    from detectron2.data import MetadataCatalog

    coco, problems, coco_root = [], [], "."
    for split in splits:
        loader = cfg.dataloader.get(split)
        names = OmegaConf.select(loader, "dataset.names") if loader is not None else None
        for name in [names] if isinstance(names, str) else list(names or []):
            meta = MetadataCatalog.get(name)
            json_file = meta.get("json_file")
            if not json_file or meta.get("generated_on_first_use") or os.path.isfile(json_file):
                continue
            if name.startswith("coco_"):  # one message for all of COCO, naming the folder it should be in
                coco.append(f"'{name}' needs {json_file}")
                coco_root = os.path.dirname(os.path.dirname(json_file)) or "."
            else:
                problems.append(f"dataset '{name}' needs {json_file}, which does not exist.")
    if coco:
        problems.append(
            f"COCO is not on disk ({'; '.join(coco)}): put COCO 2017 (train2017/, val2017/, annotations/) in "
            f"{coco_root}/ or set DETECTRON2_DATASETS to the folder that holds coco/; or train on your own "
            "COCO-format data with the user_dataset.* keys (README).")
    return problems


def check_inputs(cfg: DictConfig, eval_only: bool = False) -> None:
    """Every file the run will read exists: the datasets' annotations, the teacher checkpoint of a
    distillation config (training only) and ``train.init_checkpoint``. Raises one
    FileNotFoundError that lists each missing file and how to get it, before anything is built."""
    problems = _missing_datasets(cfg, ("test",) if eval_only else ("train", "test"))  # evaluation reads no train
    teacher = OmegaConf.select(cfg, "model.teacher_weights", default=None)
    if not eval_only and directory_given(teacher, "model.teacher_weights"):
        problems.append(directory_given(teacher, "model.teacher_weights"))
    elif not eval_only and _missing_local_file(teacher):
        teacher_cfg = OmegaConf.select(cfg, "model.teacher._target_", default=None)
        family = getattr(teacher_cfg, "__name__", str(teacher_cfg).rsplit(".", 1)[-1])
        problems.append(
            f"the teacher checkpoint '{teacher}' (model.teacher_weights) does not exist: train the teacher ({family}) "
            "with its single-model config in configs/ and copy its model_final.pth there, or convert a detrex "
            "checkpoint with tools/convert_detrex.py; or set model.teacher_weights=<path>.")
    init = _missing_init_checkpoint(cfg.train.init_checkpoint)
    if init and eval_only:  # starting from random weights is no advice for an evaluation
        init = f"the checkpoint to evaluate, train.init_checkpoint '{cfg.train.init_checkpoint}', does not exist."
    if init:
        problems.append(init)
    if problems:
        items = " ".join(f"({i}) {p}" for i, p in enumerate(problems, 1)) if len(problems) > 1 else problems[0]
        raise FileNotFoundError(f"Missing input{'s' if len(problems) > 1 else ''}: {items} "
                                "Relative paths resolve from the directory you run train_net.py in.")


def model_num_classes(model_cfg) -> List[int]:
    """Every ``num_classes`` value in the model config (interpolations resolve to these)."""
    values = [OmegaConf.select(model_cfg, key) for key in _num_classes_keys(model_cfg)]
    return [v for v in values if isinstance(v, int)]


#: (key pattern, lowest value, whether the lowest is allowed, what the key counts or weighs): the ranges a
#: value must be in before anything is built; a key a config does not have is not checked
_RANGES = [
    (r"dataloader\.train\.total_batch_size", 1, True, "images per iteration, over all processes"),
    (r"train\.max_iter", 1, True, "iterations"),
    (r"train\.eval_period", 0, True, "iterations between two evaluations (0: only the last)"),
    (r"train\.checkpointer\.period", 1, True, "iterations between two checkpoints"),
    (r"train\.max_unreadable_fraction", 0, True, "the share of unreadable training images that stops a run"),
    (r"train\.log_period", 1, True, "iterations between two log lines"),
    (r"optimizer\.lr", 0, False, "the learning rate"),
    (r"(.*\.)?num_queries", 1, True, "queries"),
    (r"(.*\.)?dn_number", 0, True, "denoising queries"),
    (r"model\.points\.\d+\.num", 1, True, "distillation points"),
    (r"model\.(loss|detrdistill\.\w+)\.temperature", 0, False, "the temperature"),
    (r"model\.(loss|detrdistill\.\w+)\.weights?(\.\w+)?", 0, True, "a loss weight"),
]


def check_ranges(cfg: DictConfig, num_processes: int = 1) -> None:
    """Refuse counts and weights out of their range (a negative number of points, a zero temperature, a
    batch that the processes cannot share), naming the key, the value and the range, before anything is
    built: out of range they crash deep in the model, or train a step and stop on a non-finite loss."""
    for key in _walk_keys(cfg):
        for pattern, low, inclusive, what in _RANGES:
            if not re.fullmatch(pattern, key):
                continue
            checked, value = _original(cfg, key)
            if not checked or isinstance(value, (bool, DictConfig, ListConfig)) or \
                    not isinstance(value, (int, float)):
                continue
            if not (value >= low if inclusive else value > low) or not math.isfinite(value):
                bound = f">= {low}" if inclusive else f"> {low}"
                raise ConfigError(f"{key}={value} is out of range ({what}): it must be {bound}. Set {key} to a "
                                 f"value {bound}.")
    batch = OmegaConf.select(cfg, "dataloader.train.total_batch_size", default=None)
    if isinstance(batch, int) and num_processes > 1 and batch % num_processes:
        raise ConfigError(
            f"dataloader.train.total_batch_size={batch} cannot be shared by {num_processes} processes: it must be a "
            f"multiple of the number of processes. Set it to e.g. {max(1, batch // num_processes) * num_processes} "
            f"or {(batch // num_processes + 1) * num_processes}.")


#: the distillation loss settings a finished run must share with its config to be reused for it (a class term
#: without ``class_term`` was the softmax one)
_LOSS_KEYS = {"normalization": None, "class_term": "softmax", "temperature": None, "weights": None}


def _loss_settings(loss: DictConfig) -> Dict[str, Any]:
    """The ``_LOSS_KEYS`` of a loss config as the loss module resolves them (a KD-DETR class term's temperature and
    weight left None are its defaults), so that a run and a config that write the same loss differently agree."""
    from detectron2.config import instantiate

    loss = copy.deepcopy(loss)
    if "KDDETRLoss" in str(loss.get("_target_", "")):
        for key, default in _LOSS_KEYS.items():
            if default is not None and key not in loss:  # a run from before the key
                loss[key] = default
    try:
        module = instantiate(loss)
    except Exception:  # a loss this code no longer builds: its written values
        module = None
    out = {}
    for key in _LOSS_KEYS:
        value = getattr(module, key, None) if module is not None else None
        if value is None:
            value = OmegaConf.to_object(loss[key]) if isinstance(loss.get(key), DictConfig) else loss.get(key)
        out[key] = dict(sorted(value.items())) if isinstance(value, dict) else value
    return out


def loss_differences(run_dir: str, config_file: str, opts: Sequence[str] = ()) -> List[str]:
    """The distillation loss settings in which the finished run in ``run_dir`` (its ``config.yaml``) differs
    from ``config_file`` with ``opts``, e.g. ``["normalization: authors -> per_image"]``, as the loss resolves
    them; [] when they agree or either has no distillation loss (a run from before a default changed is not
    silently reused)."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        return []
    ran, want = OmegaConf.load(path).model.get("loss"), load_config(config_file, opts).model.get("loss")
    if ran is None or want is None:
        return []
    ran, want = _loss_settings(ran), _loss_settings(want)
    return [f"{key}: {ran[key]} -> {want[key]}" for key in _LOSS_KEYS if ran[key] != want[key]]


def check_class_term(cfg: DictConfig) -> None:
    """A distillation config's class term must be able to move the student: the softmax term over one
    class is 0 whatever the logits (refused here, before anything is built, with the fix)."""
    from detectron2.config import instantiate

    loss = cfg.model.get("loss") if "student" in cfg.model else None
    counts = set(model_num_classes(cfg.model.student)) if loss is not None else set()
    if not counts:
        return
    term = instantiate(loss)  # a loss module holds no parameters: cheap
    for n in counts:
        term.check_num_classes(n)


def check_num_classes(cfg: DictConfig) -> None:
    """The training dataset's classes must match the model's ``num_classes``."""
    from detectron2.data import MetadataCatalog

    names = cfg.dataloader.train.dataset.names
    name = names if isinstance(names, str) else names[0]
    classes = MetadataCatalog.get(name).get("thing_classes")
    if classes is None:
        return
    for n in set(model_num_classes(cfg.model)):
        if n != len(classes):
            raise ValueError(
                f"Dataset '{name}' has {len(classes)} classes but the model has num_classes={n}. "
                f"Set model.num_classes={len(classes)} (or use user_dataset.* keys, which set it for you)."
            )
