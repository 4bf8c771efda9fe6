"""detrex checkpoint names -> ours: round trip on detrex-named state dicts, every key accounted for."""
import pytest
import torch
from conftest import FAMILIES, build_tiny

from kddetr.convert_detrex import convert_detrex_state_dict, detrex_aliases, detrex_name, swap_layout


def as_detrex(model):
    """Our model's state dict under detrex's names, with detrex's duplicate registrations."""
    out = {}
    for k, v in model.state_dict().items():
        name = detrex_name(k, model)
        out[name] = swap_layout(k, v.clone())
        for alias in detrex_aliases(name, model):
            out[alias] = out[name]
    return out


# Names read from detrex's modules (layer 0 of a 2-layer decoder, 1-layer encoder): if a rule
# above maps to anything else, these are missing from the renamed dict.
EXPECTED = {
    "dino": ["transformer.level_embeds", "neck.convs.0.conv.weight", "neck.extra_convs.0.norm.bias",
             "transformer.encoder.layers.0.attentions.0.sampling_offsets.weight",
             "transformer.encoder.layers.0.norms.1.weight", "transformer.encoder.layers.0.ffns.0.layers.1.weight",
             "transformer.decoder.layers.0.attentions.0.attn.in_proj_weight",
             "transformer.decoder.layers.1.attentions.1.value_proj.weight", "transformer.decoder.layers.0.norms.2.bias",
             "transformer.decoder.ref_point_head.layers.1.weight", "transformer.decoder.norm.weight",
             "transformer.tgt_embed.weight", "transformer.enc_output_norm.weight", "label_enc.weight",
             "class_embed.1.bias", "class_embed.2.weight", "bbox_embed.2.layers.2.bias",
             "transformer.decoder.class_embed.0.weight", "backbone.stem.conv1.weight"],
    "deformable_detr": ["query_embedding.weight", "transformer.reference_points.weight", "class_embed.0.weight",
                        "class_embed.1.weight", "bbox_embed.1.layers.0.weight"],
    "deformable_detr_two_stage": ["transformer.pos_trans.weight", "transformer.pos_trans_norm.bias",
                                  "transformer.enc_output.weight", "class_embed.2.bias",
                                  "transformer.decoder.bbox_embed.1.layers.2.weight"],
    "dab_deformable_detr": ["tgt_embed.weight", "refpoint_embed.weight",
                            "transformer.decoder.query_scale.layers.0.weight",
                            "class_embed.1.weight"],
    "dab_detr": ["anchor_box_embed.weight", "input_proj.weight", "transformer.encoder.query_scale.layers.1.bias",
                 "transformer.encoder.layers.0.attentions.0.attn.in_proj_weight",
                 "transformer.encoder.layers.0.ffns.0.layers.0.1.weight",
                 "transformer.encoder.layers.0.ffns.0.activation.weight",
                 "transformer.decoder.layers.0.attentions.0.query_content_proj.weight",
                 "transformer.decoder.layers.0.attentions.1.query_pos_proj.weight",
                 "transformer.decoder.layers.1.attentions.1.query_pos_sine_proj.weight",
                 "transformer.decoder.ref_anchor_head.layers.1.bias", "transformer.decoder.post_norm_layer.weight",
                 "class_embed.weight", "bbox_embed.layers.2.weight", "transformer.decoder.bbox_embed.layers.0.bias"],
    "conditional_detr": ["query_embed.weight", "transformer.decoder.ref_point_head.layers.1.weight",
                         "transformer.decoder.query_scale.layers.0.weight", "transformer.decoder.post_norm_layer.bias"],
}
ABSENT = {"dab_detr": ["transformer.decoder.layers.1.attentions.1.query_pos_proj.weight"]}


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "deformable_detr_refine"])
def test_detrex_names_round_trip(family):
    kw = dict(norm="FrozenBN")  # detrex's backbone: no num_batches_tracked buffers
    src = build_tiny(family, **kw)
    detrex = as_detrex(src)
    for name in EXPECTED.get(family, []):
        assert name in detrex, name
    for name in ABSENT.get(family, []):
        assert name not in detrex, name
    dst = build_tiny(family, **kw)
    torch.manual_seed(1)
    for p in dst.parameters():  # make sure the load really overwrites
        torch.nn.init.normal_(p)
    state, unmatched, problems = convert_detrex_state_dict(detrex, dst)
    assert unmatched == [] and problems == []
    dst.load_state_dict(state, strict=True)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_unmatched_and_missing_keys_are_reported():
    model = build_tiny("dino", norm="FrozenBN")
    detrex = as_detrex(model)
    detrex["transformer.decoder.some_new_head.weight"] = torch.zeros(3)
    del detrex["label_enc.weight"]
    detrex["transformer.level_embeds"] = torch.zeros(7, 7)
    _, unmatched, problems = convert_detrex_state_dict(detrex, model)
    assert unmatched == ["transformer.decoder.some_new_head.weight"]
    assert any("denoising.label_embed.weight" in p and "label_enc.weight" in p for p in problems)
    assert any(p.startswith("level_embed: shape") for p in problems)


def test_shared_head_dino_refused():
    with pytest.raises(ValueError, match="share_heads=False"):
        detrex_name("class_head.weight", build_tiny("dino", share_heads=True))


def test_convert_tool_writes_a_loadable_teacher(tmp_path, capsys):
    import importlib.util
    import os

    from conftest import ROOT
    from detectron2.config import LazyConfig, instantiate

    spec = importlib.util.spec_from_file_location("convert_tool", os.path.join(ROOT, "tools/convert_detrex.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    config = os.path.join(ROOT, "configs/synthetic/dab_detr_r50.py")
    torch.manual_seed(0)
    model = instantiate(LazyConfig.load(config).model)
    detrex = as_detrex(model)
    torch.save({"model": detrex}, tmp_path / "detrex.pth")
    out = tmp_path / "ours.pth"
    assert tool.main(["--config-file", config, "--input", str(tmp_path / "detrex.pth"), "--output", str(out)]) == 0
    loaded = torch.load(out, map_location="cpu")["model"]
    assert loaded.keys() == model.state_dict().keys()
    assert torch.equal(loaded["anchor_box_embed.weight"], model.anchor_box_embed.weight)

    del detrex["transformer.decoder.ref_anchor_head.layers.0.weight"]
    torch.save({"model": detrex}, tmp_path / "broken.pth")
    bad = tmp_path / "bad.pth"
    assert tool.main(["--config-file", config, "--input", str(tmp_path / "broken.pth"), "--output", str(bad)]) == 1
    assert not bad.exists()
    assert "decoder.ref_anchor_head.layers.0.weight: not in the checkpoint" in capsys.readouterr().out
