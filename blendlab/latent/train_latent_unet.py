"""Train the toy latent world's UNet and text encoder: ``python -m blendlab.latent.train_latent_unet --minutes 45``.

Phase 2 of the toy latent world (:mod:`.toy`), on the frozen VAE phase 1 shipped (``vae/`` of
:data:`~blendlab.latent.toy.TOY_LATENT`, its ``scaling_factor`` measured there). The models are
diffusers' ``UNet2DConditionModel`` (:func:`~blendlab.latent.toy.unet_config`) and transformers'
``CLIPTextModel`` (:func:`~blendlab.latent.toy.text_config`) over the byte-level character tokenizer
of the tiny preset (:func:`~blendlab.latent.tiny.byte_tokenizer`), trained jointly from scratch: the
UNet's ε-prediction MSE (DDPM, timesteps drawn uniformly from Stable Diffusion's 1000-step scaled
linear schedule, β from 0.00085 to 0.012, the one the shipped DDIM scheduler and
:class:`~blendlab.latent.sampler.BlendedLatentSampler` use) on z = s · (a posterior sample), with
the captions of :func:`~blendlab.latent.toy.captioned_batch`, ``--dropout`` of them empty (caption
dropout, so the one model also predicts the unconditional ε of classifier-free guidance).

Every checkpoint writes the EMA weights into the shipped folder (``unet/``, ``text_encoder/``,
``tokenizer/``, ``scheduler/``, card ``toy_latent_unet.json``) and, with ``--eval``, judges a
blended edit made with them ("a red circle" and "a blue circle" into the toy example's empty box,
:func:`judged_insert`), recorded in the card. Resumable (:mod:`blendlab.toyworld.training`).

May import: images, examples, toyworld, latent.config, latent.models, latent.sampler, latent.tiny, latent.toy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..examples import example
from ..images import atomic_write
from ..toyworld.judge import judge
from ..toyworld.training import TrainingRun, add_common_args, step_generator
from .config import LatentConfig
from .models import CLIPPromptEncoder, LatentModels, frozen
from .sampler import BlendedLatentSampler
from .tiny import SD_SCHEDULE, byte_tokenizer, ddim_scheduler
from .toy import TOKENS, TOY_LATENT, TOY_LATENT_COMMANDS, captioned_batch, text_config, unet_config

DEFAULT_OUT = "runs/toy_latent"


def load_vae(folder: Path = TOY_LATENT):
    from diffusers import AutoencoderKL

    if not (folder / "vae" / "config.json").is_file():
        raise FileNotFoundError(f"no VAE in {folder / 'vae'}: train and ship it first with "
                                f"`{TOY_LATENT_COMMANDS['vae']} --ship`")
    return frozen(AutoencoderKL.from_pretrained(folder / "vae"), "cpu", torch.float32)


def build(width: int, text_width: int):
    """(tokenizer, a ModuleDict of ``unet`` and ``text_encoder``), freshly initialised."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = byte_tokenizer(TOKENS)
    bos, eos = tokenizer.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_config(len(tokenizer), bos, eos, text_width)))
    unet = UNet2DConditionModel(**unet_config(width, text_width))
    return tokenizer, torch.nn.ModuleDict(dict(unet=unet, text_encoder=text_encoder))


def load_init_folder(nets: torch.nn.ModuleDict, folder: str | None) -> dict:
    """``--init``: continue from the UNet and text encoder of a ``save_pretrained`` folder (e.g. the
    shipped one, whose training state is not shipped) instead of a fresh initialisation; the card's
    record of where the run started (the card of the folder's own run included)."""
    if not folder:
        return dict(phase="from scratch")
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    folder = Path(folder)
    if not (folder / "unet" / "config.json").is_file():
        raise FileNotFoundError(f"--init {folder}: not a folder with unet/ and text_encoder/ (save_pretrained)")
    nets["unet"].load_state_dict(UNet2DConditionModel.from_pretrained(folder / "unet").state_dict())
    nets["text_encoder"].load_state_dict(CLIPTextModel.from_pretrained(folder / "text_encoder").state_dict())
    card = folder / "toy_latent_unet.json"
    earlier = json.loads(card.read_text()) if card.is_file() else {}
    return dict(phase="continued", folder=folder.name, earlier_steps=earlier.get("steps"),
                earlier_args=earlier.get("args"), earlier_sha256=earlier.get("sha256"),
                earlier_cpu_minutes=earlier.get("cpu_minutes"))


def bundle(vae, tokenizer, nets) -> LatentModels:
    """The frozen :class:`LatentModels` of (copies of) ``nets``, as the shipped folder loads."""
    import copy

    nets = copy.deepcopy(nets)
    text = CLIPPromptEncoder(tokenizer, frozen(nets["text_encoder"], "cpu", torch.float32))
    return LatentModels(vae=vae, unet=frozen(nets["unet"], "cpu", torch.float32), scheduler=ddim_scheduler(), text=text,
                        device=torch.device("cpu"), name="toy-latent")


@torch.no_grad()
def judged_insert(models: LatentModels, colour: str, seed: int = 0, batch_size: int = 8, **settings) -> list:
    """The judge's colours in the mask of "a {colour} circle" blended into the toy example's empty box
    (BlendedLatentSampler at LatentConfig's defaults, ``pixel`` reconstruction); ``colour`` "" runs
    the empty prompt at ``guidance_scale`` 1, the unconditional model alone (the unguided baseline)."""
    scene = example("insert", toy=True, size=models.image_size)
    if not colour:
        settings.setdefault("guidance_scale", 1.0)
    cfg = LatentConfig(prompt=f"a {colour} circle" if colour else "", batch_size=batch_size, seed=seed, reconstruction="pixel",
                       **settings)
    images = BlendedLatentSampler(models, scene.image, scene.mask, cfg).run()
    return [v.colour for v in judge(images, scene.mask)]


def ship(vae, tokenizer, nets, folder: Path, card_path: Path, evals: list) -> None:
    """The EMA weights into ``folder`` (unet/, text_encoder/, tokenizer/, scheduler/) and the card."""
    nets["unet"].save_pretrained(folder / "unet")
    nets["text_encoder"].save_pretrained(folder / "text_encoder")
    tokenizer.save_pretrained(folder / "tokenizer")
    ddim_scheduler().save_pretrained(folder / "scheduler")
    card = json.loads(card_path.read_text())
    sizes = {part: sum(p.stat().st_size for p in (folder / part).iterdir())
             for part in ("unet", "text_encoder", "tokenizer", "scheduler")}
    card.update(shipped=dict(folders=sizes, bytes=sum(sizes.values())), judged_edits=evals,
                vae_scaling_factor=float(vae.config.scaling_factor))
    text = json.dumps(card, indent=1) + "\n"
    atomic_write(folder / "toy_latent_unet.json", lambda tmp: Path(tmp).write_text(text))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, DEFAULT_OUT, steps=4000, batch=32, lr=1e-3)
    p.add_argument("--warmup", type=int, default=200, help="linear learning-rate warm-up steps")
    p.add_argument("--dropout", type=float, default=0.1, help="share of captions replaced by '' (for guidance)")
    p.add_argument("--width", type=int, default=32, help="the UNet's first block's channels (the second has twice)")
    p.add_argument("--text-width", type=int, default=64, help="the text encoder's width (cross-attention dim)")
    p.add_argument("--eval", action="store_true", help="judge a blended edit at every checkpoint (into the card)")
    p.add_argument("--ship-to", type=str, default=str(TOY_LATENT), help="the folder the weights ship in")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(args.ship_to)
    vae = load_vae(folder)
    s = float(vae.config.scaling_factor)
    torch.manual_seed(args.seed)
    tokenizer, nets = build(args.width, args.text_width)
    start = load_init_folder(nets, args.init)
    nets.train()
    opt = torch.optim.AdamW(nets.parameters(), lr=args.lr, weight_decay=0.0)
    alpha_bar = ddim_scheduler().alphas_cumprod
    evals: list[dict] = []

    def checkpointed(run):
        if args.eval:
            t0 = time.time()
            models = bundle(vae, tokenizer, run.ema)
            row = dict(step=run.step, **{c: judged_insert(models, c) for c in ("red", "blue")})
            row["seconds"] = round(time.time() - t0, 1)
            evals.append(row)
            print(f"[toy_latent_unet] judged at step {run.step}: red {row['red'].count('red')}/8, "
                  f"blue {row['blue'].count('blue')}/8 ({row['seconds']} s)", flush=True)
        ship(vae, tokenizer, run.ema, folder, Path(args.out) / "toy_latent_unet.json", evals)

    run = TrainingRun("toy_latent_unet", nets, opt, args, made_by=TOY_LATENT_COMMANDS["unet"],
                      on_checkpoint=checkpointed, extra_card=dict(
        phase="toy latent world 2/2: the text-conditioned UNet and its text encoder, on the frozen VAE of phase 1"
              + ("" if start["phase"] == "from scratch" else "; continued from earlier weights (init)"),
        init=start,
        unet_config=unet_config(args.width, args.text_width),
        text_encoder="transformers CLIPTextModel, " + json.dumps(text_config(len(tokenizer), 0, 0, args.text_width))
                     + "; the tiny preset's byte-level character tokenizer; trained jointly with the UNet from "
                       "scratch, then frozen and shipped",
        schedule=dict(SD_SCHEDULE, prediction="epsilon", timesteps="uniform"),
        loss="MSE of the UNet's epsilon on z_t = sqrt(abar) z0 + sqrt(1 - abar) eps, z0 = scaling_factor x a "
             "VAE posterior sample",
        data="blendlab.toyworld random_layout scenes, one fresh batch per step; caption: one object of the "
             f"scene named ('a red circle', 25 % 'a red shape'), '' for empty scenes; {args.dropout:.0%} "
             "caption dropout"))
    cache: dict[str, torch.Tensor] = {}

    def ids(captions):
        new = [c for c in set(captions) if c not in cache]
        if new:
            out = tokenizer(new, padding="max_length", max_length=TOKENS, truncation=True, return_tensors="pt")
            cache.update(zip(new, out.input_ids))
        return torch.stack([cache[c] for c in captions])

    if run.step and (folder / "toy_latent_unet.json").is_file():
        evals += json.loads((folder / "toy_latent_unet.json").read_text()).get("judged_edits", [])
    while run.should_continue():
        for group in opt.param_groups:
            group["lr"] = args.lr * min(1.0, (run.step + 1) / args.warmup)
        x, captions = captioned_batch(args.seed, run.step, args.batch, dropout=args.dropout)
        g = step_generator(args.seed, run.step, salt=3)
        with torch.no_grad():
            post = vae.encode(x).latent_dist
            z0 = s * (post.mean + post.std * torch.randn(post.mean.shape, generator=g))
        t = torch.randint(0, len(alpha_bar), (x.shape[0],), generator=g)
        noise = torch.randn(z0.shape, generator=g)
        a = alpha_bar[t].view(-1, 1, 1, 1)
        z_t = a.sqrt() * z0 + (1 - a).sqrt() * noise
        emb = nets["text_encoder"](ids(captions))[0]
        loss = (nets["unet"](z_t, t, encoder_hidden_states=emb).sample - noise).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(nets.parameters(), 1.0)
        opt.step()
        run.after_step({"loss": loss.item()})
    run.checkpoint()


if __name__ == "__main__":
    main()
