"""The plate localiser: a tiny fully-convolutional net, photo in, plate map out at stride 4.

A depthwise-separable backbone down to stride 32 (context: a plate sits on a car), a
top-down path back to stride 4 (small plates), one logit per 4x4 cell. About 59 k
parameters and 0.1 GMAC for a 512 x 288 input. The ONNX export ends in a sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
                 dilation: int = 1, act: bool = True) -> None:
        pad = dilation * (k - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class DS(nn.Module):
    """Depthwise 3x3 then pointwise 1x1; residual when the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.dw = ConvBN(cin, cin, 3, stride, groups=cin, dilation=dilation)
        self.pw = ConvBN(cin, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return F.relu(x + y if self.residual else y)


class PlateLocaliser(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.stem = ConvBN(3, 16, 3, 2)  # s2
        self.s4 = nn.Sequential(DS(16, 24, 2), DS(24, 24))
        self.s8 = nn.Sequential(DS(24, 48, 2), DS(48, 48))
        self.s16 = nn.Sequential(DS(48, 64, 2), DS(64, 64), DS(64, 64, dilation=2))
        self.s32 = nn.Sequential(DS(64, 96, 2), DS(96, 96), DS(96, 96, dilation=2))
        self.l4 = ConvBN(24, width, 1, act=False)
        self.l8 = ConvBN(48, width, 1, act=False)
        self.l16 = ConvBN(64, width, 1, act=False)
        self.l32 = ConvBN(96, width, 1, act=False)
        self.head = nn.Sequential(DS(width, width), DS(width, width), nn.Conv2d(width, 1, 1))
        nn.init.constant_(self.head[-1].bias, -4.0)  # plates are rare: start near 0.02

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1], H and W multiples of 32 -> (N, 1, H/4, W/4) logits."""
        f4 = self.s4(self.stem(x))
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        p = self.l32(f32)
        p = self.l16(f16) + F.interpolate(p, scale_factor=2.0, mode="nearest")
        p = self.l8(f8) + F.interpolate(p, scale_factor=2.0, mode="nearest")
        p = self.l4(f4) + F.interpolate(p, scale_factor=2.0, mode="nearest")
        return self.head(F.relu(p))


class Exported(nn.Module):
    """What goes into the ONNX file: probabilities, not logits."""

    def __init__(self, net: PlateLocaliser) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))
