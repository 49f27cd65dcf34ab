"""Analytic FLOP counts of the DA3 any-view network per stage (backbone, head, camera), for
``da3cpp bench``'s GFLOP/s columns and the README's peak arguments."""

from __future__ import annotations

from typing import Dict

# any-view presets: (embed dim C, depth, mlp hidden or ("swiglu", w12_out, w3_in), head features F,
# head out_channels). ref: depth_anything_3/configs/*.yaml, model/dualdpt.py
ANYVIEW = {
    "da3-small": (384, 12, 4 * 384, 64, (48, 96, 192, 384)),
    "da3-base": (768, 12, 4 * 768, 128, (96, 192, 384, 768)),
    "da3-large": (1024, 24, 4 * 1024, 256, (256, 512, 1024, 1024)),
    "da3-giant": (1536, 40, ("swiglu", 8192, 4096), 256, (256, 512, 1024, 1024)),
}


# ---------------------------------------------------------------------------------- FLOP

def stage_flops(preset: str, height: int, width: int, n_views: int = 1, aux: bool = False) -> Dict[str, float]:
    """Analytic FLOP (2 per multiply-add) of one forward pass of an any-view preset.

    h, w = H/14, W/14; T = 1 + h*w tokens per view; C embed dim.
      backbone = N * 2*hw*(3*14*14)*C                                   (patch embed)
               + depth * N * 2*T*(C*3C + C*C + C*mlp_in + mlp_out*C)     (qkv, proj, MLP)
               + sum over blocks of 4*T_att^2*C * (N if local else 1)   (QK^T and AV; global
                 blocks attend over T_att = N*T tokens, local ones T per view)
    (The architecture doc's 31/123 GFLOP for small/base are the linear layers only.)
      head (DualDPT main branch) = sum of 2*MACs of every conv: 1x1 projects[k] (2C -> oc_k)
        at h x w; resize ConvT k4 s4 / ConvT k2 s2 (MACs = in_px * k^2 * oc^2) / identity /
        conv3x3 s2; layer{k}_rn 3x3 oc_k -> F; refinenet4 1 RCU (2 convs 3x3 F->F), the others
        2 RCUs, at the input level's size, then 1x1 out_conv after the upsample; output_conv1
        3x3 F -> F/2 at 8h x 8w; output_conv2 3x3 F/2 -> 32 and 1x1 32 -> 2 at H x W.
        ``aux=True`` adds the ray branch PyTorch always runs (4 more refinenets,
        output_conv1_aux = 5 convs 3x3 alternating F <-> F/2 on each of the 4 aux levels,
        output_conv2_aux 3x3 F/2 -> 32 and 1x1 32 -> 7 at 8h x 8w). Check at 504x280: small
        head 11.9 main / 29.0 with aux, base 42.3 / 108.9 (doc: 29, 109).
      camera = N * 2*(2C*2C*2 + 2C*9)                                      (decoder MLP)
    Unknown presets (mono/metric/nested) raise KeyError.
    """
    c, depth, mlp, f, oc = ANYVIEW[preset]
    h, w = height // 14, width // 14
    t = 1 + h * w
    n = n_views
    start = {"da3-small": 4, "da3-base": 4, "da3-large": 8, "da3-giant": 13}[preset]
    if isinstance(mlp, tuple):
        mlp_macs = c * mlp[1] + mlp[2] * c
    else:
        mlp_macs = 2 * c * mlp
    backbone = n * 2.0 * h * w * 3 * 14 * 14 * c
    for i in range(depth):
        backbone += n * 2.0 * t * (4 * c * c + mlp_macs)
        glob = i >= start and i % 2 == 1
        backbone += 4.0 * (n * t) ** 2 * c if glob else n * 4.0 * t * t * c

    def conv(px, k, cin, cout):
        return 2.0 * px * k * k * cin * cout

    sizes = [(4 * h, 4 * w), (2 * h, 2 * w), (h, w), ((h + 1) // 2, (w + 1) // 2)]
    px = [a * b for a, b in sizes]
    head = 0.0
    for k in range(4):
        head += conv(h * w, 1, 2 * c, oc[k])                               # projects[k]
        head += conv(px[k], 3, oc[k], f)                                   # layer{k}_rn
    head += 2.0 * h * w * 16 * oc[0] ** 2 + 2.0 * h * w * 4 * oc[1] ** 2    # ConvT k4 s4, k2 s2
    head += conv(px[3], 3, oc[3], oc[3])                                   # conv3x3 s2

    def fusion():
        s = 2 * conv(px[3], 3, f, f) + conv(px[2], 1, f, f)                # refinenet4
        s += 4 * conv(px[2], 3, f, f) + conv(px[1], 1, f, f)               # refinenet3
        s += 4 * conv(px[1], 3, f, f) + conv(px[0], 1, f, f)               # refinenet2
        s += 4 * conv(px[0], 3, f, f) + conv(4 * px[0], 1, f, f)           # refinenet1 (x2 up)
        return s

    head += fusion() + conv(4 * px[0], 3, f, f // 2)                       # + output_conv1
    head += conv(height * width, 3, f // 2, 32) + conv(height * width, 1, 32, 2)
    if aux:
        head += fusion()
        for a in (px[2], px[1], px[0], 4 * px[0]):     # output_conv1_aux on all 4 aux levels
            head += 3 * conv(a, 3, f, f // 2) + 2 * conv(a, 3, f // 2, f)
        head += conv(4 * px[0], 3, f // 2, 32) + conv(4 * px[0], 1, 32, 7)
    head *= n
    camera = n * 2.0 * (2 * (2 * c) ** 2 + 2 * c * 9)
    return {"backbone": backbone, "head": head, "camera": camera}
