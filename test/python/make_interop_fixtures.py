"""Parity fixtures for lib/interop (issue 14): the public LVDM code's own modules at small sizes.

Needs Debian's python3-torch (run with /usr/bin/python3) and a read-only checkout of the public
repository YingqingHe/LVDM, given on the command line (never copied into this project), e.g.

  git --git-dir=/path/to/YingqingHe+LVDM/repo archive HEAD lvdm | tar -x -C /tmp/lvdm-src
  /usr/bin/python3 test/python/make_interop_fixtures.py make --lvdm /tmp/lvdm-src --out test/fixtures/interop
  /usr/bin/python3 test/python/make_interop_fixtures.py check --lvdm /tmp/lvdm-src --fixtures test/fixtures/interop \
      --unet exported.ckpt --ae exported.ckpt --ae-model a [--ema]
  /usr/bin/python3 test/python/make_interop_fixtures.py check-full --lvdm /tmp/lvdm-src --yaml exported.yaml --ckpt exported.ckpt
  /usr/bin/python3 test/python/make_interop_fixtures.py compare-state --exported exported.ckpt \
      --fixture-ckpt test/fixtures/interop/lvdm_small.ckpt [--ema]

`make` builds the public FrameInterpPredUNet (mask channel + label_emb table for the noise level s)
and two public 3D AutoencoderKL models (temporal stride 2 and 1), sets EVERY parameter to seeded
random values (so zero-initialised layers hide nothing), rounds them to float16 (the files store
half precision to stay small; outputs are computed in float32 from the rounded values), writes
  lvdm_small.ckpt   a Lightning-style checkpoint: state_dict with model.diffusion_model.*,
                    model_ema.* (LitEma names without dots, different values), first_stage_model.*
                    (autoencoder A, incl. SamePadConv3d's aliased `.weight` keys), schedule buffers
  ae_small.safetensors  autoencoder B's state dict (plus loss.* keys, as in released AE files)
  unet_small.yaml / ae_small.yaml  the public-format configs of both
  *.npy             inputs and outputs (UNet with raw and EMA weights; encode mean/logvar; decode;
                    5 steps of the public DDIMSampler, eta 0, from a stored x_T)
`check` loads exported state dicts into freshly built public models with load_state_dict(strict=True)
and compares their outputs with the stored ones (max abs difference <= 1e-4); `check-full` builds the
public (FrameInterpPred)LatentDiffusion from the exported YAML and loads the exported .ckpt with
load_state_dict(strict=True), as the public sampling scripts do. `compare-state` needs
only python3-torch (no public code): torch.load(weights_only=True) of an exported checkpoint has
exactly the fixture checkpoint's keys and shapes and the same values (used by test/interop.test.ts).

Imports stubbed because Debian has no package for them (documented in lib/interop/README.md):
  einops  -> a small rearrange() for the patterns the UNet uses (no repeat with repeat_only=False)
  pytorch_lightning -> LightningModule = torch.nn.Module (only the base class of AutoencoderKL)
"""
import argparse
import json
import os
import re
import struct
import sys
import types

import numpy as np
import torch

SEED = 1234


# ---------------------------------------------------------------------------------------- stubs
def _parse_side(side):
    groups = []
    for m in re.finditer(r"\(([^)]*)\)|(\S+)", side):
        groups.append(m.group(1).split() if m.group(1) is not None else [m.group(2)])
    return groups


def rearrange(t, pattern, **sizes):
    left, right = [s.strip() for s in pattern.split("->")]
    lg, rg = _parse_side(left), _parse_side(right)
    assert len(lg) == t.dim(), (pattern, t.shape)
    known = dict(sizes)
    for g, n in zip(lg, t.shape):
        unknown = [a for a in g if a not in known]
        prod = 1
        for a in g:
            if a in known:
                prod *= known[a]
        if len(unknown) == 1:
            known[unknown[0]] = n // prod
        assert len(unknown) <= 1, pattern
    flat_in = [a for g in lg for a in g]
    flat_out = [a for g in rg for a in g]
    x = t.reshape([known[a] for a in flat_in]).permute([flat_in.index(a) for a in flat_out])
    shape = []
    for g in rg:
        p = 1
        for a in g:
            p *= known[a]
        shape.append(p)
    return x.reshape(shape)


def repeat(*_a, **_k):
    raise NotImplementedError("einops.repeat stub: not used on the paths these fixtures exercise")


def install_stubs(lvdm_root):
    ein = types.ModuleType("einops")
    ein.rearrange = rearrange
    ein.repeat = repeat
    sys.modules.setdefault("einops", ein)
    tq = types.ModuleType("tqdm")
    tq.tqdm = lambda it, **_k: it
    sys.modules.setdefault("tqdm", tq)
    pl = types.ModuleType("pytorch_lightning")
    pl.LightningModule = torch.nn.Module
    sys.modules.setdefault("pytorch_lightning", pl)
    sys.path.insert(0, os.path.abspath(lvdm_root))


# ---------------------------------------------------------------------------------------- models
UNET_PARAMS = dict(
    image_size=8, in_channels=5, out_channels=4, model_channels=32, attention_resolutions=[2],
    num_res_blocks=1, channel_mult=[1, 1], num_heads=2, use_temporal_transformer=False,
    use_checkpoint=False, legacy=False, kernel_size_t=1, padding_t=0, temporal_length=3,
    use_relative_position=True, use_scale_shift_norm=True, num_classes=251,
)


def ae_params(downsample):
    return dict(
        embed_dim=4,
        lossconfig={"target": "torch.nn.Identity"},
        ddconfig=dict(
            double_z=True, z_channels=4,
            encoder=dict(target="lvdm.models.modules.aemodules3d.Encoder", params=dict(
                n_hiddens=16, downsample=downsample, image_channel=3, norm_type="group",
                padding_type="replicate", double_z=True, z_channels=4)),
            decoder=dict(target="lvdm.models.modules.aemodules3d.Decoder", params=dict(
                n_hiddens=16, upsample=downsample, z_channels=4, image_channel=3, norm_type="group")),
        ),
    )


AE_A = [2, 2, 2]  # one stage, stride (2, 2, 2): inside the Lightning checkpoint
AE_B = [1, 2, 2]  # one stage, stride (1, 2, 2) (temporal kernel 4 with stride 1: padding (2, 1))


def build_unet():
    from lvdm.models.modules.openaimodel3d import FrameInterpPredUNet
    return FrameInterpPredUNet(**UNET_PARAMS).eval()


def build_ae(downsample):
    from lvdm.models.autoencoder3d import AutoencoderKL
    return AutoencoderKL(**ae_params(downsample)).eval()


def randomize(module, gen):
    """Every parameter random (norm weights around 1), then rounded to float16-representable values."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                fan_in = p[0].numel() if "embeddings_table" not in name and "label_emb" not in name else 4
                bound = 1.5 / np.sqrt(fan_in)
                v = (torch.rand(p.shape, generator=gen) * 2 - 1) * bound
            elif name.endswith("weight"):
                v = 1 + 0.2 * torch.randn(p.shape, generator=gen)
            else:
                v = 0.2 * torch.randn(p.shape, generator=gen)
            p.copy_(v.half().float())


def unet_inputs(gen):
    b, t, h = 2, 5, 8
    x = torch.randn(b, 4, t, h, h, generator=gen)
    mask = torch.zeros(b, 1, t, h, h)
    mask[0, :, 0] = 1
    mask[1, :, 0] = 1
    mask[1, :, -1] = 1
    ts = torch.tensor([10, 500])
    s = torch.tensor([3, 100])
    return x, mask, ts, s


def unet_forward(unet, x, mask, ts, s):
    with torch.no_grad():
        return unet(torch.cat([x, mask], 1), ts, y=s, mask=mask)


def ddim_public(unet, mask, s, x_t, steps):
    """The public DDIMSampler (eta 0, "uniform" timesteps) over the UNet with a fixed mask and s.
    Its register_buffer moves tensors to CUDA; the subclass keeps them on the CPU."""
    from lvdm.samplers.ddim import DDIMSampler

    class Model:
        pass

    sb = schedule_buffers(1000, 0.0015, 0.0155)
    model = Model()
    model.num_timesteps = 1000
    model.betas, model.alphas_cumprod, model.alphas_cumprod_prev = sb["betas"], sb["alphas_cumprod"], sb["alphas_cumprod_prev"]
    model.device = torch.device("cpu")
    model.parameterization = "eps"
    model.apply_model = lambda xn, t, c, **_k: unet(torch.cat([xn, mask], 1), t, y=s, mask=mask)

    class CpuDDIM(DDIMSampler):
        def register_buffer(self, name, attr):
            setattr(self, name, attr)

    with torch.no_grad():
        out, _ = CpuDDIM(model).sample(S=steps, batch_size=x_t.shape[0], shape=tuple(x_t.shape[1:]), conditioning=None, eta=0.0, x_T=x_t, verbose=False)
    return out


def ae_forward(ae, x, z):
    with torch.no_grad():
        post = ae.encode(x)
        return post.mean, post.logvar, ae.decode(z)


# ---------------------------------------------------------------------------------------- files
def save_npy(out, name, t):
    np.save(os.path.join(out, name + ".npy"), t.detach().cpu().numpy().astype(np.float32))


def write_safetensors(path, sd, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs, off = [], 0
    for k in sorted(sd):
        a = sd[k].detach().cpu().contiguous()
        dt = {torch.float16: "F16", torch.float32: "F32", torch.int64: "I64"}[a.dtype]
        b = a.numpy().tobytes()
        header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base, out = 8 + n, {}
    dts = {"F16": np.float16, "F32": np.float32, "I64": np.int64, "I32": np.int32}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(raw[base + b:base + e], dtype=dts[v["dtype"]]).reshape(v["shape"]).copy())
    return out


def load_state(path):
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    return sd.get("state_dict", sd)


def public_yaml(path, unet_params, ae_downsample, first_stage_target_only=False):
    import yaml
    ae = ae_params(ae_downsample)
    ae["lossconfig"] = "__is_first_stage__"
    unet = dict(unet_params)
    cfg = {"model": {"base_learning_rate": 8e-5, "target": "lvdm.models.ddpm3d.FrameInterpPredLatentDiffusion", "params": {
        "linear_start": 0.0015, "linear_end": 0.0155, "timesteps": 1000, "loss_type": "l1", "image_size": 8, "video_length": 5, "channels": 4,
        "conditioning_key": "concat-adm-mask", "noisy_cond": True, "max_noise_level": 250, "scale_by_std": False,
        "scale_factor": 0.33422927, "shift_factor": 1.4606637, "encoder_type": "3d", "p_interp": 0.0, "p_pred": 0.5,
        "unet_config": {"target": "lvdm.models.modules.openaimodel3d.FrameInterpPredUNet", "params": unet},
        "first_stage_config": {"target": "lvdm.models.autoencoder3d.AutoencoderKL", "params": ae},
    }}}
    if first_stage_target_only:
        ae2 = ae_params(ae_downsample)
        ae2["lossconfig"] = {"target": "lvdm.models.losses.LPIPSWithDiscriminator", "params": {"disc_start": 50001, "kl_weight": 0.0, "disc_weight": 0.5}}
        cfg = {"model": {"base_learning_rate": 3.6e-5, "target": "lvdm.models.autoencoder3d.AutoencoderKL", "params": ae2}}
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)


def schedule_buffers(T, ls, le):
    """DDPM.register_schedule's persistent buffers (linear schedule, v_posterior 0), as in ddpm3d.py."""
    betas = (torch.linspace(ls ** 0.5, le ** 0.5, T, dtype=torch.float64) ** 2).numpy()
    ac = np.cumprod(1.0 - betas)
    prev = np.append(1.0, ac[:-1])
    post = betas * (1.0 - prev) / (1.0 - ac)
    cols = {
        "betas": betas, "alphas_cumprod": ac, "alphas_cumprod_prev": prev,
        "sqrt_alphas_cumprod": np.sqrt(ac), "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": np.log(1.0 - ac), "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ac - 1), "posterior_variance": post,
        "posterior_log_variance_clipped": np.log(np.maximum(post, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - prev) * np.sqrt(1.0 - betas) / (1.0 - ac),
    }
    return {k: torch.tensor(v, dtype=torch.float32) for k, v in cols.items()}


def make(out):
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    unet = build_unet()
    randomize(unet, gen)
    ema = build_unet()
    randomize(ema, gen)
    ae_a = build_ae(AE_A)
    randomize(ae_a, gen)
    ae_b = build_ae(AE_B)
    randomize(ae_b, gen)

    x, mask, ts, s = unet_inputs(gen)
    for n, v in (("unet_x", x), ("unet_mask", mask[:, 0, :, 0, 0]), ("unet_t", ts.float()), ("unet_s", s.float())):
        save_npy(out, n, v)
    save_npy(out, "unet_out", unet_forward(unet, x, mask, ts, s))
    save_npy(out, "unet_out_ema", unet_forward(ema, x, mask, ts, s))
    x_t = torch.randn(x.shape, generator=gen)
    save_npy(out, "ddim_xT", x_t)
    save_npy(out, "ddim_out", ddim_public(unet, mask, s, x_t, 5))
    for tag, ae, shape in (("ae_a", ae_a, (1, 3, 4, 16, 16)), ("ae_b", ae_b, (1, 3, 4, 16, 16))):
        xa = torch.rand(shape, generator=gen) * 2 - 1
        f = 2 if tag == "ae_a" else 1
        z = torch.randn(1, 4, shape[2] // f, 8, 8, generator=gen)
        mean, logvar, dec = ae_forward(ae, xa, z)
        for n, v in (("x", xa), ("z", z), ("mean", mean), ("logvar", logvar), ("dec", dec)):
            save_npy(out, f"{tag}_{n}", v)

    # Lightning-style checkpoint of a FrameInterpPredLatentDiffusion (half precision).
    sd = {}
    for k, v in unet.state_dict().items():
        sd["model.diffusion_model." + k] = v.half()
    sd["model_ema.decay"] = torch.tensor(0.9999)
    sd["model_ema.num_updates"] = torch.tensor(1000, dtype=torch.int32)
    for k, v in ema.state_dict().items():
        sd["model_ema." + ("diffusion_model." + k).replace(".", "")] = v.half()
    # .half() on the module keeps SamePadConv3d's aliased `.weight` sharing the `.conv.weight` storage.
    import copy
    for k, v in copy.deepcopy(ae_a).half().state_dict().items():
        sd["first_stage_model." + k] = v
    for k, v in schedule_buffers(1000, 0.0015, 0.0155).items():
        sd[k] = v
    ckpt = {"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "1.4.2", "state_dict": sd,
            "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(0.5), "best_model_path": "x.ckpt"}},
            "optimizer_states": [], "lr_schedulers": []}
    torch.save(ckpt, os.path.join(out, "lvdm_small.ckpt"))
    # Released autoencoder files also carry the loss (LPIPS + discriminator) weights: loss.*.
    # safetensors cannot share storage: the aliased `X.weight` copies of `X.conv.weight` are left out
    # (as safetensors.torch.save_model does); the importer accepts both forms.
    full = ae_b.state_dict()
    sdb = {k: v.half() for k, v in full.items() if not (k.endswith(".weight") and k[:-7] + ".conv.weight" in full)}
    sdb["loss.logvar"] = torch.zeros(()).half()
    sdb["loss.discriminator.main.0.weight"] = torch.zeros(2, 3, 1, 1, 1).half()
    write_safetensors(os.path.join(out, "ae_small.safetensors"), sdb, {"format": "pt"})
    public_yaml(os.path.join(out, "lvdm_small.yaml"), UNET_PARAMS, AE_A)
    public_yaml(os.path.join(out, "ae_small.yaml"), UNET_PARAMS, AE_B, first_stage_target_only=True)
    n_unet = sum(p.numel() for p in unet.parameters())
    n_ae = sum(p.numel() for p in ae_a.parameters()), sum(p.numel() for p in ae_b.parameters())
    print(json.dumps({"unet_params": n_unet, "ae_params": n_ae, "torch": torch.__version__}))


def check(fixtures, unet_file, ae_file, ae_down, use_ema, tol=1e-4):
    """Loads exported state dicts strictly into the public models and compares outputs."""
    report = {}
    if unet_file:
        sd = load_state(unet_file)
        unet = build_unet()
        pref = "model.diffusion_model."
        sub = {k[len(pref):]: v.float() for k, v in sd.items() if k.startswith(pref)} if any(k.startswith(pref) for k in sd) else {k: v.float() for k, v in sd.items()}
        unet.load_state_dict(sub, strict=True)
        ld = lambda n: torch.from_numpy(np.load(os.path.join(fixtures, n + ".npy")))
        x, m = ld("unet_x"), ld("unet_mask")
        mask = m[:, None, :, None, None].expand(x.shape[0], 1, x.shape[2], x.shape[3], x.shape[4]).contiguous()
        out = unet_forward(unet, x, mask, ld("unet_t").long(), ld("unet_s").long())
        ref = ld("unet_out_ema" if use_ema else "unet_out")
        report["unet_max_abs"] = float((out - ref).abs().max())
    if ae_file:
        sd = load_state(ae_file)
        pref = "first_stage_model."
        sub = {k[len(pref):]: v.float() for k, v in sd.items() if k.startswith(pref)} if any(k.startswith(pref) for k in sd) else {k: v.float() for k, v in sd.items()}
        down = AE_A if ae_down == "a" else AE_B
        ae = build_ae(down)
        ae.load_state_dict(sub, strict=True)
        tag = "ae_" + ae_down
        ld = lambda n: torch.from_numpy(np.load(os.path.join(fixtures, f"{tag}_{n}.npy")))
        mean, logvar, dec = ae_forward(ae, ld("x"), ld("z"))
        report["ae_mean_max_abs"] = float((mean - ld("mean")).abs().max())
        report["ae_logvar_max_abs"] = float((logvar - ld("logvar")).abs().max())
        report["ae_dec_max_abs"] = float((dec - ld("dec")).abs().max())
    report["ok"] = all(v <= tol for k, v in report.items() if k.endswith("max_abs"))
    print(json.dumps(report))
    return 0 if report["ok"] else 1


def check_full(yaml_path, ckpt):
    """The public LatentDiffusion class built from a (exported) public YAML loads the checkpoint with
    load_state_dict(strict=True), as scripts/sample_utils.load_model does. Extra stubs for imports
    that only training / logging use: pytorch_lightning.utilities.rank_zero_only, torchvision.utils,
    lvdm.utils.saving_utils."""
    import yaml
    pl = sys.modules["pytorch_lightning"]
    ut = types.ModuleType("pytorch_lightning.utilities")
    ut.rank_zero_only = lambda f: f
    pl.utilities = ut
    sys.modules.setdefault("pytorch_lightning.utilities", ut)
    tv, tvu = types.ModuleType("torchvision"), types.ModuleType("torchvision.utils")
    tvu.make_grid = None
    tv.utils = tvu
    sys.modules.setdefault("torchvision", tv)
    sys.modules.setdefault("torchvision.utils", tvu)
    su = types.ModuleType("lvdm.utils.saving_utils")
    su.log_txt_as_img = None
    sys.modules.setdefault("lvdm.utils.saving_utils", su)
    from lvdm.utils.common_utils import instantiate_from_config
    model = instantiate_from_config(yaml.safe_load(open(yaml_path))["model"])
    sd = torch.load(ckpt, map_location="cpu", weights_only=True)
    sd = sd.get("state_dict", sd)
    model.load_state_dict(sd, strict=True)
    report = {"strict_load": "ok", "keys": len(sd), "model_keys": len(model.state_dict()), "ok": True}
    print(json.dumps(report))
    return 0


def compare_state(exported, fixture_ckpt, ema=False):
    """torch.load(weights_only=True) of an exported LatentDiffusion state dict: the same keys and shapes
    as the fixture checkpoint, and the same values for the UNet (raw or EMA), autoencoder and schedule."""
    got = torch.load(exported, map_location="cpu", weights_only=True)
    got = got.get("state_dict", got)
    ref = torch.load(fixture_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    report = {"missing": sorted(set(ref) - set(got))[:5], "unexpected": sorted(set(got) - set(ref))[:5]}
    bad_shape, max_diff = [], 0.0
    ema_map = {("model_ema." + ("diffusion_model." + k[len("model.diffusion_model."):]).replace(".", "")): k for k in ref if k.startswith("model.diffusion_model.")}
    for k, v in ref.items():
        if k not in got:
            continue
        if tuple(got[k].shape) != tuple(v.shape):
            bad_shape.append(k)
            continue
        if k in ("model_ema.decay", "model_ema.num_updates"):
            continue
        want = v
        if k.startswith("model.diffusion_model.") and ema:
            want = ref[next(e for e, r in ema_map.items() if r == k)]
        if k.startswith("model_ema."):
            continue  # the exporter writes its one set of weights into both copies
        max_diff = max(max_diff, float((got[k].float() - want.float()).abs().max()) if v.numel() else 0.0)
    report["bad_shape"] = bad_shape[:5]
    report["max_abs"] = max_diff
    report["ok"] = not report["missing"] and not report["unexpected"] and not bad_shape and max_diff <= 1e-6
    print(json.dumps(report))
    return 0 if report["ok"] else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["make", "check", "check-full", "compare-state"])
    ap.add_argument("--yaml", help="check-full: the public YAML written next to the exported .ckpt")
    ap.add_argument("--ckpt", help="check-full: the exported .ckpt")
    ap.add_argument("--lvdm", help="checkout of YingqingHe/LVDM (the folder holding lvdm/); make and check")
    ap.add_argument("--exported", help="compare-state: exported .ckpt")
    ap.add_argument("--fixture-ckpt", help="compare-state: the fixture lvdm_small.ckpt")
    ap.add_argument("--out")
    ap.add_argument("--fixtures")
    ap.add_argument("--unet")
    ap.add_argument("--ae")
    ap.add_argument("--ae-model", default="a", choices=["a", "b"])
    ap.add_argument("--ema", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.mode == "compare-state":
        return compare_state(a.exported, a.fixture_ckpt, a.ema)
    if not a.lvdm:
        ap.error("--lvdm is required for make and check")
    install_stubs(a.lvdm)
    torch.set_num_threads(1)
    if a.mode == "make":
        make(a.out)
        return 0
    if a.mode == "check-full":
        return check_full(a.yaml, a.ckpt)
    return check(a.fixtures, a.unet, a.ae, a.ae_model, a.ema)


if __name__ == "__main__":
    sys.exit(main())
