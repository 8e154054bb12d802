"""An independent reference for a short-model stage: the public LVDM UNet trained in PyTorch.

Is it this project's trainer or the budget? (issue 12: every short model here draws lumpy blobs
where real clips hold clean squares and triangles.) This script trains the public network
(YingqingHe/LVDM's openaimodel3d.UNetModel, PyTorch) on an LVDM.ts latent cache with the recipe
read from an LVDM.ts short-model stage's config.json: its UNet size, noise schedule, prediction
(eps or v), MSE loss, self-conditioning (Chen et al. 2022, Algorithm 1: with probability 1/2 the
network reads its own x_0 estimate from a first forward without gradient, concatenated to its
input, as LVDM.ts does), AdamW with linear warm-up and cosine decay, gradient clipping, the EMA
with LDM's warm-up, batch size and steps. Only the implementation differs: PyTorch's kernels,
initialisation and random streams, and the public code's modules. Its EMA weights are written in
the public names and layouts (snapshots every ckpt_every steps) for
`experiments/torch-reference/to-lvdm.ts`, which makes them an LVDM.ts lvdm.safetensors, so the
project's own sampler and readings judge both trainings alike.

Needs Debian's python3-torch (run with /usr/bin/python3) and a read-only checkout of the public
repository, e.g.
  git --git-dir=/path/to/YingqingHe+LVDM/repo archive HEAD lvdm | tar -x -C /tmp/lvdm-src
  /usr/bin/python3 experiments/torch-reference/train_image.py --lvdm /tmp/lvdm-src \
      --latents runs/X/cache/latents/latents-<key>.safetensors --config runs/X/store/short/<key>/config.json \
      --out runs/torch-X
Rerunning the same command continues from its last checkpoint (written atomically every
ckpt_every steps), to the same numbers as an uninterrupted run (checked: killed with SIGKILL after
its first checkpoint and rerun, the final weights were byte-identical).

Two more modes, without training: `--check PARITY --weights W` compares the public network holding
W with the LVDM.ts output that `to-lvdm.ts --parity PARITY` wrote; `--fixture DIR` writes the
fixture of test/torch-reference.test.ts (seeded random public weights, an input and the public
output on it).
"""
import argparse
import copy
import json
import math
import os
import struct
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "python"))
from make_interop_fixtures import install_stubs, randomize, read_safetensors, schedule_buffers, write_safetensors  # noqa: E402


def fail(msg):
    sys.exit(f"train_image.py: {msg}")


def safetensors_metadata(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)).get("__metadata__", {})


def read_cache(path):
    """The latent cache of an LVDM.ts run: posterior mean / logvar [N, t, h, w, c] and the normalisation."""
    if not os.path.exists(path):
        fail(f"{path}: latent cache not found")
    meta = safetensors_metadata(path)
    if "lvdm_latents" not in meta:
        fail(f"{path}: not an LVDM.ts latent cache (no 'lvdm_latents' metadata)")
    t = read_safetensors(path)
    norm = json.loads(meta["lvdm_latents"])["norm"]
    # channels-last -> the public layout [N, c, t, h, w]
    return t["mean"].permute(0, 4, 1, 2, 3).contiguous(), t["logvar"].permute(0, 4, 1, 2, 3).contiguous(), norm


def public_unet_params(u, latent_size):
    """The public UNetModel's arguments for an LVDM.ts unet section (as lib/interop/public-config.ts exports them)."""
    if u["model_channels"] % 32:
        fail(f"unet.model_channels {u['model_channels']} is not a multiple of 32 (the public GroupNorm(32) needs it)")
    for key, want in (("mask_channel", False), ("s_embed", "none"), ("attention_block", "lvdm"), ("temporal_attention", True), ("norm_groups", 32)):
        if u.get(key, want) != want:
            fail(f"unet.{key} is {u.get(key)!r}; this reference builds the public short-video UNet ({key} {want!r})")
    if u.get("num_classes") is not None:
        fail("unet.num_classes: the public UNet has no class table")
    p = dict(
        image_size=latent_size, in_channels=u["in_channels"] * (2 if u.get("self_condition") else 1), out_channels=u["out_channels"],
        model_channels=u["model_channels"], attention_resolutions=u["attention_resolutions"], num_res_blocks=u["num_res_blocks"],
        channel_mult=u["channel_mult"], dropout=u["dropout"], use_temporal_transformer=False, use_checkpoint=False, legacy=False,
        kernel_size_t=1, padding_t=0, temporal_length=u["temporal_length"], use_relative_position=u["relative_position"],
        use_scale_shift_norm=u["scale_shift_norm"],
    )
    if u.get("num_heads") is not None:
        p["num_heads"] = u["num_heads"]
    else:
        p["num_head_channels"] = u["head_channels"]
    return p


def lr_at(step, o, total):
    """Linear warm-up, then cosine decay to min_lr (lib/train/optim.ts lrAt)."""
    w = o.get("warmup_steps", 0)
    if w > 0 and step < w:
        return o["lr"] * (step + 1) / w
    if o.get("decay", "cosine") == "constant":
        return o["lr"]
    p = min(1.0, (step - w) / max(1, total - w))
    return o["min_lr"] + 0.5 * (o["lr"] - o["min_lr"]) * (1 + math.cos(math.pi * p))


def ema_decay(n, decay):
    """LDM's LitEma warm-up: min(decay, (1 + n) / (10 + n)) for the n-th update (n from 1)."""
    return min(decay, (1 + n) / (10 + n))


def x0_of(pred, x_t, sab, s1mab, prediction):
    """x_0 from the network's output: v (Salimans & Ho 2022) or eps (Ho et al. 2020, eq. 15)."""
    return sab * x_t - s1mab * pred if prediction == "v" else (x_t - s1mab * pred) / sab


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def public_unet(lvdm_root, u, latent_size):
    """The public UNetModel for an LVDM.ts unet section, with a training-safe einops stub."""
    install_stubs(lvdm_root)
    # STAttentionBlock.forward adds its spatial attention to its input in place (`x += out`) after
    # normalising a rearranged view of that input, which autograd refuses (GroupNorm's backward needs
    # the view). The stub rearrange returns a copy instead: the same values, a gradient autograd can take.
    einops = sys.modules["einops"]
    if not getattr(einops, "copying", False):
        view_rearrange = einops.rearrange
        einops.rearrange = lambda t, pattern, **sizes: view_rearrange(t, pattern, **sizes).clone()
        einops.copying = True
    from lvdm.models.modules.openaimodel3d import UNetModel
    return UNetModel(**public_unet_params(u, latent_size))


def check(a, u):
    """The public network with --weights on to-lvdm.ts's parity input: max |difference| to the LVDM.ts output."""
    if not a.weights:
        fail("--check needs --weights")
    p = read_safetensors(a.check)
    x, sc, out = (p[k].permute(0, 4, 1, 2, 3) for k in ("x", "self_cond", "out"))
    model = public_unet(a.lvdm, u, x.shape[-1]).eval()
    model.load_state_dict(read_safetensors(a.weights), strict=True)
    inp = torch.cat([x, sc], 1) if u.get("self_condition") else x
    with torch.no_grad():
        got = model(inp, p["t"].long())
    diff = float((got - out).abs().max())
    scale = float(out.abs().max())
    print(f"public network vs LVDM.ts on the parity input: max |difference| {diff:.3g} (outputs up to {scale:.3g})")
    if not diff <= 1e-4 * max(1.0, scale):
        fail(f"parity check failed: {diff:.3g} > 1e-4")


def make_fixture(a, u):
    """Test fixture for to-lvdm.ts: the public network with seeded random weights (public layout), an
    input (channels last) and the public network's output on it, in to-lvdm.ts --parity's format."""
    gen = torch.Generator().manual_seed(1234)
    shape = (2, u["in_channels"], 1, 8, 8)
    x, sc = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    t = torch.tensor([10, 700])
    model = public_unet(a.lvdm, u, 8).eval()
    randomize(model, gen)
    with torch.no_grad():
        out = model(torch.cat([x, sc], 1) if u.get("self_condition") else x, t)
    os.makedirs(a.fixture, exist_ok=True)
    # randomize() rounds every value to float16, so half precision stores them exactly (and small).
    write_safetensors(os.path.join(a.fixture, "unet.safetensors"), {k: v.half() for k, v in model.named_parameters()}, {"step": "7"})
    last = lambda v: v.permute(0, 2, 3, 4, 1)  # noqa: E731
    write_safetensors(os.path.join(a.fixture, "parity.safetensors"), {"x": last(x), "self_cond": last(sc), "t": t.float(), "out": last(out)})
    print(f"{a.fixture}: unet.safetensors, parity.safetensors (outputs up to {float(out.abs().max()):.3g})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lvdm", required=True, help="read-only checkout of YingqingHe/LVDM (the folder holding lvdm/)")
    ap.add_argument("--latents", help="an LVDM.ts latent cache (runs/X/cache/latents/latents-<key>.safetensors)")
    ap.add_argument("--config", required=True, help="the LVDM.ts short-model stage's config.json whose recipe to follow")
    ap.add_argument("--out")
    ap.add_argument("--check", metavar="PARITY", help="no training: compare the public network with --weights on to-lvdm.ts --parity's input and output")
    ap.add_argument("--weights", help="with --check: public-layout weights (a snapshot of this script)")
    ap.add_argument("--fixture", metavar="DIR", help="no training: write to-lvdm.ts's test fixture (random public weights, an input and the public output)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("LVDM_THREADS", "2")))
    ap.add_argument("--steps", type=int, help="override diffusion.train.steps")
    a = ap.parse_args()

    try:
        cfg = json.load(open(a.config))
    except (OSError, ValueError) as e:
        fail(f"{a.config}: cannot read the stage's config.json ({e})")
    if cfg.get("name") != "lvdm" or "unet" not in cfg or "diffusion" not in cfg:
        fail(f"{a.config}: expected the config.json of an LVDM.ts short-model stage (name 'lvdm', with unet and diffusion)")
    u, d = cfg["unet"], cfg["diffusion"]
    tr, o = d["train"], d["optim"]
    steps = a.steps or tr["steps"]
    prediction = d.get("prediction", "eps")
    if d["loss"] != "mse" or d["schedule"]["kind"] != "linear" or o["kind"] != "adamw":
        fail("this reference follows recipes with loss mse, the linear schedule and adamw")
    for key in ("timestep_sampling", "timestep_weighting", "motion_weight", "input_perturbation"):
        if d.get(key):
            fail(f"diffusion.{key} is set; this reference trains with t uniform and plain MSE")

    torch.set_num_threads(a.threads)
    torch.manual_seed(cfg["seed"])
    if a.check:
        return check(a, u)
    if a.fixture:
        return make_fixture(a, u)
    if not a.latents or not a.out:
        fail("--latents and --out are needed to train")
    mean, logvar, norm = read_cache(a.latents)
    n_clips = mean.shape[0]
    scale = norm["scale"] * d["latents"]["input_scale"]
    shift = norm["shift"]
    sb = schedule_buffers(d["schedule"]["timesteps"], d["schedule"]["linear_start"], d["schedule"]["linear_end"])
    sqrt_ab, sqrt_1mab = sb["sqrt_alphas_cumprod"], sb["sqrt_one_minus_alphas_cumprod"]
    T = d["schedule"]["timesteps"]

    model = public_unet(a.lvdm, u, mean.shape[-1])
    model.train()
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"], weight_decay=o["weight_decay"])
    n_params = sum(p.numel() for p in model.parameters())

    os.makedirs(os.path.join(a.out, "snapshots"), exist_ok=True)
    ckpt_path = os.path.join(a.out, "checkpoint.pt")
    start, ema_updates, perm, pos, epoch = 0, 0, None, 0, 0
    if os.path.exists(ckpt_path):
        c = torch.load(ckpt_path)
        model.load_state_dict(c["model"])
        ema.load_state_dict(c["ema"])
        opt.load_state_dict(c["opt"])
        torch.set_rng_state(c["rng"])
        start, ema_updates, perm, pos, epoch = c["step"], c["ema_updates"], c["perm"], c["pos"], c["epoch"]
        print(f"resumed at step {start}", flush=True)
    print(f"public UNetModel (PyTorch {torch.__version__}, {a.threads} threads): {n_params:,} parameters; {n_clips} clips of latents {list(mean.shape[1:])}; {steps} steps of batch {tr['batch_size']}, {prediction}-prediction, self-conditioning {bool(u.get('self_condition'))}", flush=True)

    log = open(os.path.join(a.out, "metrics.jsonl"), "a")
    b = tr["batch_size"]
    t0 = time.time()
    for step in range(start, steps):
        # Each epoch visits every clip once in a fresh random order.
        idx = []
        while len(idx) < b:
            if perm is None:
                perm = torch.randperm(n_clips)
            idx.append(int(perm[pos]))
            pos += 1
            if pos >= n_clips:
                perm, pos, epoch = None, 0, epoch + 1
        idx = torch.tensor(idx)
        # A fresh posterior sample, normalised: z_n = scale (z + shift) (lvdm-facts.md section 1).
        z0 = scale * (mean[idx] + torch.exp(0.5 * logvar[idx]) * torch.randn_like(mean[idx]) + shift)
        t = torch.randint(0, T, (b,))
        eps = torch.randn_like(z0)
        sab, s1mab = sqrt_ab[t].view(-1, 1, 1, 1, 1), sqrt_1mab[t].view(-1, 1, 1, 1, 1)
        x_t = sab * z0 + s1mab * eps  # q(x_t | x_0), Ho et al. 2020 eq. 4
        target = sab * eps - s1mab * z0 if prediction == "v" else eps
        inp = x_t
        if u.get("self_condition"):
            sc = torch.zeros_like(x_t)
            if torch.rand(()) < 0.5:
                with torch.no_grad():
                    sc = x0_of(model(torch.cat([x_t, sc], 1), t), x_t, sab, s1mab, prediction)
            inp = torch.cat([x_t, sc], 1)
        loss = torch.mean((model(inp, t) - target) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), o["grad_clip"]) if o.get("grad_clip", 0) > 0 else torch.tensor(0.0)
        lr = lr_at(step, o, steps)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        if tr["ema_decay"] > 0:
            ema_updates += 1
            dd = ema_decay(ema_updates, tr["ema_decay"])
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.mul_(dd).add_(pm, alpha=1 - dd)
        done = step + 1
        if done % tr["log_every"] == 0 or done == steps:
            rec = {"step": done, "loss": float(loss), "lr": lr, "grad_norm": float(gn), "seconds": time.time() - t0}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(f"step {done}/{steps}  loss {rec['loss']:.4f}  {rec['seconds'] / (done - start):.3f} s/step", flush=True)
        if done % tr["ckpt_every"] == 0 or done == steps:
            weights = ema if tr["ema_decay"] > 0 else model
            write_safetensors(os.path.join(a.out, "snapshots", f"unet-{done}.safetensors"), dict(weights.named_parameters()),
                              {"step": str(done), "parameters": str(n_params), "torch": torch.__version__})
            atomic_save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "rng": torch.get_rng_state(),
                         "step": done, "ema_updates": ema_updates, "perm": perm, "pos": pos, "epoch": epoch}, ckpt_path)
    print(f"trained {steps - start} steps in {(time.time() - t0) / 60:.1f} min; EMA weights: {a.out}/snapshots/unet-{steps}.safetensors", flush=True)


if __name__ == "__main__":
    main()
