"""The public PyTorch LVDM UNet at the `unet-reference` configuration (bench/unet.ts), timed on
this machine for the README's comparison: forward (no_grad) and training step (forward, L1 loss,
backward, AdamW) medians and minima over repeated runs.

    /usr/bin/python3 bench/python/unet_reference.py LVDM_CHECKOUT [--threads 2] [--reps 8]

LVDM_CHECKOUT is a checkout of github.com/YingqingHe/LVDM (not shipped here); einops, tqdm and
pytorch_lightning are stubbed as in test/python/make_interop_fixtures.py, so Debian's
python3-torch is all it needs. Prints one JSON line.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "python"))
import make_interop_fixtures as fx  # noqa: E402  (stubs einops / tqdm / pytorch_lightning)

# bench/unet.ts REFERENCE_UNET: batch 4, 8 frames of 16x16x4 latents + mask channel, 64 channels,
# multipliers [1, 2], one residual block per level, attention at downsample 2, 32 channels per head.
PARAMS = dict(image_size=16, in_channels=5, out_channels=4, model_channels=64, attention_resolutions=[2],
              num_res_blocks=1, channel_mult=[1, 2], num_head_channels=32, use_temporal_transformer=False,
              use_checkpoint=False, legacy=False, kernel_size_t=1, padding_t=0, temporal_length=8,
              use_relative_position=True, use_scale_shift_norm=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lvdm")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=8)
    a = ap.parse_args()
    fx.install_stubs(a.lvdm)
    from lvdm.models.modules.openaimodel3d import FrameInterpPredUNet
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    net = FrameInterpPredUNet(**PARAMS)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.01)
    x = torch.randn(4, 4, 8, 16, 16)
    mask = torch.zeros(4, 1, 8, 16, 16)
    ts = torch.tensor([10, 250, 500, 999])

    def step():
        opt.zero_grad()
        out = net(torch.cat([x, mask], 1), ts, mask=mask)
        (out - x).abs().mean().backward()
        opt.step()

    def forward():
        with torch.no_grad():
            net(torch.cat([x, mask], 1), ts, mask=mask)

    def timed(fn):
        for _ in range(2):
            fn()
        ms, cpu = [], []
        for _ in range(a.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            ms.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        ms.sort()
        cpu.sort()
        return {"median_ms": ms[len(ms) // 2], "min_ms": ms[0], "cpu_median_ms": cpu[len(cpu) // 2]}

    print(json.dumps({"params": sum(p.numel() for p in net.parameters()), "threads": a.threads, "torch": torch.__version__,
                      "forward": timed(forward), "train_step": timed(step)}))


if __name__ == "__main__":
    main()
