"""Train the plate localiser and export it to ONNX (opset 17, dynamic height and width).

Reads the .npz that dataset.py writes. Device-agnostic (CUDA when there is one, else the
CPU with `--threads` threads); seeds fixed. Samples: 35 % real dev photos, 65 % generated
Italian scenes; each scaled to a long side of about 512 px (x0.75-1.3), cropped to
`--crop`, flipped half the time, then brightness, contrast, gamma, grey, blur, noise and
JPEG loss. The target is 1 on the 4x4 cells whose centre lies in a plate box.

A fifth of the real dev photos (by a hash of the name) and the last 100 generated scenes
are held out for validation: centre recall and boxes per image at a long side of 512.

    PYTHONHASHSEED=0 /work/torchvenv/bin/python train/localiser/train.py \
        --data /tmp/localiser/data.npz --iters 4000 \
        --onnx src/vigila/vision/anpr/data/plate_localiser.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from dataset import load
from model import Exported, PlateLocaliser

STRIDE = 4
LONG_SIDE = 512
REAL_SHARE = 0.35


class Data:
    def __init__(self, path: Path) -> None:
        self.images, self.boxes, self.source, self.names = load(path)


class Samples(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Sample k of the run: its own generator, so any number of loader workers gives the
    same stream."""

    def __init__(self, data: Data, real: list[int], generated: list[int],
                 crop: tuple[int, int], seed: int, count: int) -> None:
        self.data, self.real, self.generated = data, real, generated
        self.crop, self.seed, self.count = crop, seed, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, k])
        pool = self.real if rng.random() < REAL_SHARE else self.generated
        i = pool[int(rng.integers(0, len(pool)))]
        x, t = sample(self.data.images[i], self.data.boxes[i], self.crop, rng)
        a = x.astype(np.float32) * (2 / 255) - 1
        return torch.from_numpy(a.transpose(2, 0, 1).copy()), torch.from_numpy(t)[None]


def split(data: Data) -> tuple[list[int], list[int], list[int]]:
    """(real train, generated train, validation) indices."""
    real = [i for i, s in enumerate(data.source) if s != 0]
    generated = [i for i, s in enumerate(data.source) if s == 0]
    held = {i for i in real if hashlib.sha1(data.names[i].encode()).digest()[1] % 5 == 0}
    val = sorted(held) + generated[-100:]
    return [i for i in real if i not in held], generated[:-100], val


def sample(image: np.ndarray, boxes: np.ndarray, crop: tuple[int, int],
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    cw, ch = crop
    h, w = image.shape[:2]
    scale = LONG_SIDE * math.exp(rng.uniform(math.log(0.75), math.log(1.3))) / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    img = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1
                     else cv2.INTER_LINEAR)
    b = boxes * scale
    # Where the crop goes: around a plate most of the time, anywhere otherwise.
    if len(b) and rng.random() < 0.7:
        x, y, bw, bh = b[rng.integers(0, len(b))]
        x0 = rng.uniform(min(x + bw - cw, x), max(x + bw - cw, x))
        y0 = rng.uniform(min(y + bh - ch, y), max(y + bh - ch, y))
    else:
        x0 = rng.uniform(min(0, nw - cw), max(0, nw - cw))
        y0 = rng.uniform(min(0, nh - ch), max(0, nh - ch))
    x0, y0 = round(x0), round(y0)
    fill = rng.integers(0, 256, 3)
    out = np.empty((ch, cw, 3), np.uint8)
    out[:] = fill.astype(np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(nw, x0 + cw), min(nh, y0 + ch)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    b = b - np.array([x0, y0, 0, 0], np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1].copy()
        b[:, 0] = cw - b[:, 0] - b[:, 2]
    return photometric(out, rng), target(b, cw, ch)


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    f = img.astype(np.float32)
    if rng.random() < 0.8:
        f = (f - 128) * rng.uniform(0.6, 1.4) + 128 + rng.uniform(-50, 50)
    if rng.random() < 0.3:
        f = f * rng.uniform(0.8, 1.2, 3).astype(np.float32)
    if rng.random() < 0.3:
        f = 255 * (np.clip(f, 0, 255) / 255) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.1:
        f[:] = f.mean(axis=2, keepdims=True)
    if rng.random() < 0.25:
        f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.5, 1.8))
    if rng.random() < 0.3:
        f = f + rng.standard_normal(f.shape).astype(np.float32) * rng.uniform(2, 12)
    img = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        quality = int(rng.integers(25, 90))
        _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return img


def target(boxes: np.ndarray, cw: int, ch: int) -> np.ndarray:
    """1 on the cells whose centre is inside a box; at least the centre cell of each box."""
    gw, gh = cw // STRIDE, ch // STRIDE
    t = np.zeros((gh, gw), np.float32)
    for x, y, w, h in boxes:
        c0 = math.ceil(x / STRIDE - 0.5)
        c1 = math.floor((x + w) / STRIDE - 0.5)
        r0 = math.ceil(y / STRIDE - 0.5)
        r1 = math.floor((y + h) / STRIDE - 0.5)
        cx, cy = int((x + w / 2) / STRIDE), int((y + h / 2) / STRIDE)
        c0, c1 = min(c0, cx), max(c1, cx)
        r0, r1 = min(r0, cy), max(r1, cy)
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, gw - 1), min(r1, gh - 1)
        if c1 >= c0 and r1 >= r0:
            t[r0:r1 + 1, c0:c1 + 1] = 1
    return t


def to_batch(images: list[np.ndarray]) -> torch.Tensor:
    a = np.stack(images).astype(np.float32) * (2 / 255) - 1
    return torch.from_numpy(a.transpose(0, 3, 1, 2).copy())


def padded_input(image: np.ndarray) -> tuple[np.ndarray, float]:
    """As localise.py does: long side 512, sides rounded up to multiples of 32 by padding."""
    h, w = image.shape[:2]
    scale = LONG_SIDE / max(h, w)
    nw, nh = round(w * scale), round(h * scale)
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((math.ceil(nh / 32) * 32, math.ceil(nw / 32) * 32, 3), np.uint8)
    out[:nh, :nw] = small
    return out, scale


def proposals(prob: np.ndarray, threshold: float = 0.4) -> list[tuple[float, float, float, float]]:
    """Boxes in input pixels (a rough copy of localise.py's rule, for monitoring)."""
    mask = (prob > threshold).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = []
    for x, y, w, h, area in stats[1:n]:
        if area < 2:
            continue
        px, py = 0.25 * w * STRIDE + 4, 0.25 * h * STRIDE + 4
        out.append((x * STRIDE - px, y * STRIDE - py, w * STRIDE + 2 * px, h * STRIDE + 2 * py))
    return out


@torch.no_grad()
def validate(net: PlateLocaliser, data: Data, indices: list[int], device: torch.device
             ) -> dict[str, float]:
    net.eval()
    hits = {"real": [0, 0, 0], "gen": [0, 0, 0]}  # plates, found, boxes
    for i in indices:
        inp, scale = padded_input(data.images[i])
        prob = torch.sigmoid(net(to_batch([inp]).to(device)))[0, 0].cpu().numpy()
        boxes = proposals(prob)
        h = hits["gen" if data.source[i] == 0 else "real"]
        h[2] += len(boxes)
        for x, y, w, bh in data.boxes[i] * scale:
            cx, cy = x + w / 2, y + bh / 2
            h[0] += 1
            h[1] += any(bx <= cx <= bx + bw and by <= cy <= by + bb for bx, by, bw, bb in boxes)
    net.train()
    images = {"real": sum(data.source[i] != 0 for i in indices),
              "gen": sum(data.source[i] == 0 for i in indices)}
    return {f"{k}_recall": v[1] / max(v[0], 1) for k, v in hits.items()} | {
        f"{k}_boxes": v[2] / max(images[k], 1) for k, v in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/localiser/data.npz"))
    parser.add_argument("--onnx", type=Path,
                        default=Path("src/vigila/vision/anpr/data/plate_localiser.onnx"))
    parser.add_argument("--checkpoint", type=Path, default=Path("/tmp/localiser/model.pt"))
    parser.add_argument("--iters", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, nargs=2, default=(384, 288), metavar=("W", "H"))
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="data loader processes")
    parser.add_argument("--val-every", type=int, default=500)
    parser.add_argument("--export-only", type=Path, metavar="CHECKPOINT",
                        help="skip training: export this state dict to --onnx")
    args = parser.parse_args()
    if args.export_only:
        net = PlateLocaliser()
        net.load_state_dict(torch.load(args.export_only, map_location="cpu"))
        export(net, args.onnx)
        return

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    data = Data(args.data)
    real, generated, val = split(data)
    print(f"train: {len(real)} real, {len(generated)} generated; val: {len(val)}; {device}")
    net = PlateLocaliser().to(device)
    print(f"{sum(p.numel() for p in net.parameters())} parameters")
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = 200
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / args.iters))))
    start = time.perf_counter()
    running = 0.0
    samples = Samples(data, real, generated, tuple(args.crop), args.seed,
                      args.iters * args.batch)
    loader = torch.utils.data.DataLoader(samples, args.batch, shuffle=False,
                                         num_workers=args.workers, drop_last=True,
                                         persistent_workers=args.workers > 0)
    for step, (x, t) in enumerate(loader, start=1):
        x, t = x.to(device, non_blocking=True), t.to(device, non_blocking=True)
        logits = net(x)
        p = torch.sigmoid(logits)
        bce = F.binary_cross_entropy_with_logits(logits, t, pos_weight=torch.tensor(3.0,
                                                 device=device))
        dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
        loss = bce + dice
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 50 == 0:
            print(f"step {step} loss {running:.4f} lr {sched.get_last_lr()[0]:.2e} "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
        if step % args.val_every == 0 or step == args.iters:
            print("val", {k: round(v, 3) for k, v in validate(net, data, val, device).items()},
                  flush=True)
            args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save(net.state_dict(), args.checkpoint)

    export(net, args.onnx)


def export(net: PlateLocaliser, onnx: Path) -> None:
    """ONNX opset 17, input "image" (N, 3, H, W) in [-1, 1] with dynamic N, H, W (H and W
    multiples of 32), output "plate_prob" (N, 1, H/4, W/4); the legacy exporter."""
    net = net.cpu().eval()
    onnx.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(Exported(net), (torch.zeros(1, 3, 288, 512),), str(onnx),
                      input_names=["image"], output_names=["plate_prob"], opset_version=17,
                      dynamo=False, dynamic_axes={"image": {0: "n", 2: "height", 3: "width"},
                                                  "plate_prob": {0: "n", 2: "h4", 3: "w4"}})
    print(f"wrote {onnx} ({onnx.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
