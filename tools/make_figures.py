"""Make the README's picture: the input noised to the kept steps, and the blend at each of them.

Run: ``python tools/make_figures.py`` (CPU, no weights, a few seconds). Only the forward process
q(x_t | x_0) is used, which needs no trained model: it is exactly what the blend puts outside the mask.
"""

from pathlib import Path

import torch
from matplotlib.figure import Figure

import blendlab as bl
from blendlab.sampler import create_diffusion
from blendlab.viz import to_rgb

OUT = Path(__file__).resolve().parents[1] / "docs" / "blending.png"


def main(path: Path = OUT) -> Path:
    models = bl.load_models("tiny", device="cpu")  # only its diffusion config (the paper's schedule) is used
    image = bl.sample_image("grace_hopper", size=256)
    mask = bl.ellipse_mask(256, center=(0.5, 0.3), radii=(0.22, 0.2))
    diffusion = create_diffusion(models, "100")
    kept = list(range(diffusion.num_timesteps - 25))[::-1]  # skip_timesteps=25, as the paper
    picks = [kept[k] for k in (0, 18, 37, 55, 74)]
    g = torch.Generator().manual_seed(0)
    fig = Figure(figsize=(12.5, 5.4), layout="constrained")
    axes = fig.subplots(2, len(picks) + 1)
    axes[0, 0].imshow(to_rgb(image))
    axes[0, 0].set_title("input $x_0$", fontsize=9)
    axes[1, 0].imshow(mask[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    axes[1, 0].set_title("mask $m$ (1 = edit)", fontsize=9)
    for k, i in enumerate(picks, start=1):
        t = torch.tensor(i)
        bg = diffusion.q_sample(image, t, noise=torch.randn(image.shape, generator=g))
        # a stand-in for the guided proposal inside the mask: noise at the same level
        fg = diffusion.q_sample(torch.zeros_like(image), t, noise=torch.randn(image.shape, generator=g))
        blend = fg * mask + bg * (1 - mask)
        abar = float(diffusion.alphas_cumprod[i])
        axes[0, k].imshow(to_rgb(bg))
        axes[0, k].set_title(f"$q(x_t|x_0)$, t={diffusion.timestep_map[i]}, " + r"$\bar\alpha$" + f"={abar:.2f}",
                             fontsize=9)
        axes[1, k].imshow(to_rgb(blend))
        axes[1, k].set_title(r"$x_{t-1} = x_{fg}\odot m + x_{bg}\odot(1-m)$", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Blended Diffusion keeps the background by blending with the input noised to every step's level "
                 "(inside the mask: the guided proposal; here a same-level noise stand-in)", fontsize=10)
    fig.savefig(path, dpi=80)
    return path


if __name__ == "__main__":
    print(main())
