"""Parity fixtures for the text-to-video import (lib/interop, issue 15): the public LVDM code's own
text-to-video modules at small sizes, in the layout of configs/lvdm_short/text2video.yaml.

Needs Debian's python3-torch (run with /usr/bin/python3) and a read-only checkout of the public
repository YingqingHe/LVDM given with --lvdm (imported from there, never copied):

  /usr/bin/python3 test/python/make_interop_t2v_fixtures.py --lvdm /path/to/LVDM --out test/fixtures/interop/t2v

Builds, with every parameter set to seeded random values rounded to float16:
  - openaimodel3d.UNetModel with use_temporal_transformer (attention_temporal.SpatialTemporalTransformer
    blocks: spatial / temporal self-attention, cross-attention, GEGLU), per-frame convolutions;
  - lvdm.models.autoencoder.AutoencoderKL, LDM's 2D autoencoder (the text-to-video first stage);
  - the CLIP text tower. The public cond stage (condition_modules.FrozenCLIPEmbedder) wraps Hugging
    Face's CLIPTextModel, and `transformers` has no Debian package and cannot be installed offline,
    so TinyCLIPTextModel below re-implements that architecture in plain torch with HF's parameter
    names (text_model.embeddings.{token,position}_embedding, encoder.layers.i.{layer_norm1,
    self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}, final_layer_norm, the
    position_ids buffer): pre-LayerNorm, causal attention with q scaled by d^-1/2, quick_gelu.
The tokenizer is the small CLIP-format vocabulary of test/fixtures/clip-tokenizer; the prompts'
token ids come from its independent reference (expected.json), padded to 77 with <|endoftext|>.

Writes t2v_small.ckpt (a Lightning-style state_dict: model.diffusion_model.*, first_stage_model.*,
cond_stage_model.transformer.*, the schedule buffers), t2v_small.yaml (the public config),
clip/{vocab.json,merges.txt,config.json}, and .npy inputs/outputs: token ids, CLIP last hidden state,
UNet eps for fixed x, t and text context, autoencoder encode (mean, logvar) and decode.
Stubs (no Debian packages): einops.rearrange and pytorch_lightning, as in make_interop_fixtures.py, and
omegaconf.listconfig.ListConfig (UNetModel only type-checks context_dim against it).
"""
import argparse
import json
import os
import shutil
import sys
import types

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_interop_fixtures import install_stubs, randomize, save_npy, schedule_buffers  # noqa: E402

SEED = 4321
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKENIZER = os.path.join(ROOT, "test", "fixtures", "clip-tokenizer")
PROMPTS = ["a red circle moves left", "two squares move apart!!"]
LINEAR = (0.00085, 0.012)

CLIP_CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                   max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, vocab_size=623)

UNET_PARAMS = dict(
    image_size=8, in_channels=4, out_channels=4, model_channels=32, attention_resolutions=[],
    num_res_blocks=1, channel_mult=[1], num_heads=2, transformer_depth=1, context_dim=32,
    use_checkpoint=False, legacy=False, kernel_size_t=1, padding_t=0, use_temporal_transformer=True,
    temporal_length=3, use_relative_position=True,
)

AE_PARAMS = dict(
    embed_dim=4, monitor="val/rec_loss",
    ddconfig=dict(double_z=True, z_channels=4, resolution=16, in_channels=3, out_ch=3, ch=32, ch_mult=[1, 1],
                  num_res_blocks=0, attn_resolutions=[], dropout=0.0),
    lossconfig={"target": "torch.nn.Identity"},
)


# ------------------------------------------------------------------- CLIP text tower (HF names)
class Attn(nn.Module):
    def __init__(self, w, heads):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(w, w) for _ in range(4))

    def forward(self, x, causal):
        b, l, w = x.shape
        d = w // self.heads
        split = lambda t: t.view(b, l, self.heads, d).transpose(1, 2)
        q = split(self.q_proj(x) * d ** -0.5)
        a = torch.softmax(q @ split(self.k_proj(x)).transpose(-1, -2) + causal, dim=-1)
        return self.out_proj((a @ split(self.v_proj(x))).transpose(1, 2).reshape(b, l, w))


class Mlp(nn.Module):
    def __init__(self, w, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(w, hidden), nn.Linear(hidden, w)

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(h * torch.sigmoid(1.702 * h))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        w = c["hidden_size"]
        self.self_attn = Attn(w, c["num_attention_heads"])
        self.layer_norm1 = nn.LayerNorm(w, eps=c["layer_norm_eps"])
        self.mlp = Mlp(w, c["intermediate_size"])
        self.layer_norm2 = nn.LayerNorm(w, eps=c["layer_norm_eps"])

    def forward(self, x, causal):
        x = x + self.self_attn(self.layer_norm1(x), causal)
        return x + self.mlp(self.layer_norm2(x))


class TinyCLIPTextModel(nn.Module):
    """HF CLIPTextModel's architecture and state_dict names (text_model.*), without transformers."""

    def __init__(self, c):
        super().__init__()
        tm = nn.Module()
        tm.embeddings = nn.Module()
        tm.embeddings.token_embedding = nn.Embedding(c["vocab_size"], c["hidden_size"])
        tm.embeddings.position_embedding = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        tm.embeddings.register_buffer("position_ids", torch.arange(c["max_position_embeddings"]).expand((1, -1)))
        tm.encoder = nn.Module()
        tm.encoder.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
        tm.final_layer_norm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.text_model = tm

    def forward(self, ids):
        tm = self.text_model
        l = ids.shape[1]
        x = tm.embeddings.token_embedding(ids) + tm.embeddings.position_embedding(tm.embeddings.position_ids[:, :l])
        causal = torch.full((l, l), float("-inf")).triu(1)
        for layer in tm.encoder.layers:
            x = layer(x, causal)
        return tm.final_layer_norm(x)  # last_hidden_state


# ----------------------------------------------------------------------------------- fixtures
def prompt_ids():
    cases = {c["text"]: c["ids"] for c in json.load(open(os.path.join(TOKENIZER, "expected.json")))["cases"]}
    return torch.tensor([cases[p] for p in PROMPTS])


def public_yaml(path):
    import yaml
    ae = json.loads(json.dumps(AE_PARAMS))
    cfg = {"model": {"base_learning_rate": 5e-5, "target": "lvdm.models.ddpm3d.LatentDiffusion", "params": {
        "linear_start": LINEAR[0], "linear_end": LINEAR[1], "num_timesteps_cond": 1, "log_every_t": 200, "timesteps": 1000,
        "first_stage_key": "video", "cond_stage_key": "caption", "image_size": [8, 8], "video_length": 5, "channels": 4,
        "cond_stage_trainable": False, "conditioning_key": "crossattn", "scale_by_std": False, "scale_factor": 0.18215,
        "use_ema": False,
        "unet_config": {"target": "lvdm.models.modules.openaimodel3d.UNetModel", "params": dict(UNET_PARAMS, use_checkpoint=True)},
        "first_stage_config": {"target": "lvdm.models.autoencoder.AutoencoderKL", "params": ae},
        "cond_stage_config": {"target": "lvdm.models.modules.condition_modules.FrozenCLIPEmbedder"},
    }}}
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)


def make(lvdm, out):
    install_stubs(lvdm)
    # UNetModel checks `type(context_dim) == omegaconf.listconfig.ListConfig` (omegaconf: no Debian package).
    oc, lc = types.ModuleType("omegaconf"), types.ModuleType("omegaconf.listconfig")
    lc.ListConfig = type("ListConfig", (list,), {})
    oc.listconfig = lc
    sys.modules.setdefault("omegaconf", oc)
    sys.modules.setdefault("omegaconf.listconfig", lc)
    from lvdm.models.modules.openaimodel3d import UNetModel
    from lvdm.models.autoencoder import AutoencoderKL

    os.makedirs(os.path.join(out, "clip"), exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    unet = UNetModel(**UNET_PARAMS).eval()
    randomize(unet, gen)
    ae = AutoencoderKL(**AE_PARAMS).eval()
    randomize(ae, gen)
    clip = TinyCLIPTextModel(CLIP_CONFIG).eval()
    randomize(clip, gen)

    with torch.no_grad():
        ids = prompt_ids()
        context = clip(ids)
        x = torch.randn(2, 4, 5, 8, 8, generator=gen)
        ts = torch.tensor([20, 700])
        eps = unet(x, ts, context=context)
        xa = torch.rand(2, 3, 16, 16, generator=gen) * 2 - 1  # two frames (the 2D AE sees frames)
        post = ae.encode(xa)
        z = torch.randn(2, 4, 8, 8, generator=gen)
        dec = ae.decode(z)
    for n, v in (("ids", ids.float()), ("context", context), ("unet_x", x), ("unet_t", ts.float()), ("unet_out", eps),
                 ("ae_x", xa), ("ae_mean", post.mean), ("ae_logvar", post.logvar), ("ae_z", z), ("ae_dec", dec)):
        save_npy(out, "t2v_" + n, v)

    sd = {}
    for k, v in unet.state_dict().items():
        sd["model.diffusion_model." + k] = v.half()
    for k, v in ae.state_dict().items():
        sd["first_stage_model." + k] = v.half()
    for k, v in clip.state_dict().items():
        sd["cond_stage_model.transformer." + k] = v if k.endswith("position_ids") else v.half()
    for k, v in schedule_buffers(1000, *LINEAR).items():
        sd[k] = v
    torch.save({"epoch": 1, "global_step": 100, "state_dict": sd}, os.path.join(out, "t2v_small.ckpt"))
    public_yaml(os.path.join(out, "t2v_small.yaml"))
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(TOKENIZER, f), os.path.join(out, "clip", f))
    with open(os.path.join(out, "clip", "config.json"), "w") as f:
        json.dump(dict(CLIP_CONFIG, architectures=["CLIPTextModel"], model_type="clip_text_model"), f, indent=1)
    count = lambda m: sum(p.numel() for p in m.parameters())
    print(json.dumps({"unet_params": count(unet), "ae_params": count(ae), "clip_params": count(clip), "torch": torch.__version__}))


# --medium: the structure of text2video.yaml at reduced widths (4 levels, 2 residual blocks, transformers at
# ds 1, 2 and 4 with 8 heads, channel changes; the AE with 4 levels, 2 blocks and nin_shortcuts). Not committed
# (about 20 MB); checked once with `lvdm import` and the same comparisons as the small fixture.
MEDIUM_UNET = dict(UNET_PARAMS, model_channels=64, channel_mult=[1, 2, 4, 4], num_res_blocks=2, attention_resolutions=[4, 2, 1],
                   num_heads=8, image_size=16)
MEDIUM_AE = dict(AE_PARAMS, ddconfig=dict(AE_PARAMS["ddconfig"], ch=32, ch_mult=[1, 2, 4, 4], num_res_blocks=2, resolution=64))

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lvdm", required=True, help="checkout of YingqingHe/LVDM")
    ap.add_argument("--out", default=os.path.join(ROOT, "test", "fixtures", "interop", "t2v"))
    ap.add_argument("--medium", action="store_true", help="text2video.yaml's structure at reduced widths (not committed)")
    a = ap.parse_args()
    if a.medium:
        UNET_PARAMS.update(MEDIUM_UNET)
        AE_PARAMS.update(MEDIUM_AE)
    make(a.lvdm, a.out)
