"""What both toy-world training scripts share: seeding, a time budget, resumable checkpoints, EMA
weights and the JSON card that says how a weight file was made.

A run writes into ``--out``: ``<name>.pt`` (the weights the preset loads), ``<name>.json`` (the card)
and ``<name>.state.pt`` (optimizer, EMA and step, to resume; not shipped). Every ``--checkpoint-minutes``
the three are rewritten atomically, so a run that is killed loses at most that much work, and running
the same command again continues from the last checkpoint.

May import: download, images.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import resource
import time
from pathlib import Path

import torch

from ..download import sha256_file
from ..images import atomic_write

__all__ = ["add_common_args", "TrainingRun", "step_generator", "load_init"]


def add_common_args(p: argparse.ArgumentParser, default_out: str, steps: int, batch: int, lr: float) -> None:
    p.add_argument("--seed", type=int, default=0, help="data and initialisation seed")
    p.add_argument("--steps", type=int, default=steps, help="total optimisation steps (across resumes)")
    p.add_argument("--minutes", type=float, default=None, help="stop this run after so many minutes")
    p.add_argument("--stop-at", type=int, default=None,
                   help="stop this run at this step (the schedule still runs to --steps; resume later)")
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--out", type=str, default=default_out, help="folder for weights, card and state")
    p.add_argument("--fresh", action="store_true", help="ignore an existing state file and start over")
    p.add_argument("--signs", type=float, default=0.0,
                   help="share of training scenes/views carrying a written word (0: the data of before signs)")
    p.add_argument("--init", type=str, default=None,
                   help="fine-tune: start from these weights (e.g. the shipped ones) instead of a random init")


def load_init(model: torch.nn.Module, path: str | None) -> dict:
    """Load the weights at ``path`` into ``model`` (a fine-tune's start); the card's record of it."""
    if not path:
        return dict(phase="from scratch")
    if not Path(path).is_file():
        raise FileNotFoundError(f"--init {path}: no such weights file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return dict(phase="fine-tune", init=dict(path=str(path), sha256=sha256_file(path)))


def step_generator(seed: int, step: int, salt: int) -> torch.Generator:
    """A generator for one training step, a pure function of (seed, step, salt): resuming a run
    replays exactly the data and noise the uninterrupted run would have drawn."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + step * 7919 + salt) % (2**63 - 1))
    return g


def _atomic_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class TrainingRun:
    """Bookkeeping of one resumable training run of ``model`` named ``name`` in ``args.out``."""

    def __init__(self, name: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, args,
                 extra_card: dict, ema_decay: float = 0.999, export=None, made_by: str | None = None,
                 on_checkpoint=None):
        self.name, self.model, self.opt, self.args = name, model, optimizer, args
        self.on_checkpoint = on_checkpoint  # called after each checkpoint (e.g. to ship or judge the EMA weights)
        self.made_by = made_by or f"python -m blendlab.toyworld.train_{name.split('_')[-1]}"
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.ema = copy.deepcopy(model).eval().requires_grad_(False)
        self.ema_decay = ema_decay
        self.extra_card = extra_card
        self.export = export or (lambda m: m.state_dict())
        self.step = 0
        self.wall = 0.0  # seconds over all resumed runs
        self.cpu = 0.0
        self.losses: dict[str, float] = {}
        self.history: list[dict] = []
        self.run_log: list[dict] = []  # one entry per run: its arguments and the steps it covered
        self.runs = 0
        state = self.out / f"{name}.state.pt"
        if state.exists() and not args.fresh:
            s = torch.load(state, map_location="cpu", weights_only=True)
            model.load_state_dict(s["model"])
            self.ema.load_state_dict(s["ema"])
            optimizer.load_state_dict(s["opt"])
            self.step, self.wall, self.cpu = int(s["step"]), float(s["wall"]), float(s["cpu"])
            self.losses = dict(s["losses"])
            self.history = list(json.loads(s["history"]))
            self.runs = int(s["runs"])
            if "run_log" in s:
                self.run_log = list(json.loads(s["run_log"]))
            else:  # a state written before run logs existed: its card holds the earlier arguments
                card = self.out / f"{name}.json"
                earlier = json.loads(card.read_text()).get("args") if card.exists() else None
                self.run_log = [dict(runs=self.runs, start_step=0, end_step=self.step, args=earlier)]
            print(f"[{name}] resuming at step {self.step} ({self.wall / 60:.1f} min so far)", flush=True)
        self.runs += 1
        self.start_step = self.step
        self.run_log.append(dict(run=self.runs, start_step=self.step, end_step=self.step,
                                 args={k: v for k, v in vars(args).items() if k not in ("out", "fresh")}))
        self._t0, self._c0 = time.time(), _cpu_seconds()
        self._last_ckpt = time.time()
        self._smoothed: dict[str, float] = {}

    # -- loop ------------------------------------------------------------------------------
    def should_continue(self) -> bool:
        if self.step >= self.args.steps:
            return False
        if getattr(self.args, "stop_at", None) is not None and self.step >= self.args.stop_at:
            return False
        if self.args.minutes is not None and time.time() - self._t0 > self.args.minutes * 60:
            return False
        return True

    def after_step(self, losses: dict[str, float]) -> None:
        """Update the EMA weights and running losses; checkpoint when it is time. A non-finite loss
        stops the run before anything is written, so the files on disk stay the last good checkpoint."""
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(
                f"[{self.name}] step {self.step + 1}: {', '.join(bad)} became {losses[bad[0]]}; stopped without "
                f"writing anything, so {self.out} still holds the last checkpoint. Run the same command again to "
                f"resume from it; if the same step fails again, its data (a pure function of --seed and the "
                f"step) is at fault")
        self.step += 1
        decay = min(self.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.model.parameters()):
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)
            for e, b in zip(self.ema.buffers(), self.model.buffers()):
                e.copy_(b)
        for k, v in losses.items():
            self._smoothed[k] = v if k not in self._smoothed else 0.98 * self._smoothed[k] + 0.02 * v
        if self.step % 50 == 0:
            self.history.append(dict(step=self.step, **{k: round(v, 5) for k, v in self._smoothed.items()}))
            print(f"[{self.name}] step {self.step}/{self.args.steps} "
                  + " ".join(f"{k}={v:.4f}" for k, v in self._smoothed.items())
                  + f" ({(time.time() - self._t0) / 60:.1f} min)", flush=True)
        if time.time() - self._last_ckpt > self.args.checkpoint_minutes * 60:
            self.checkpoint()

    def checkpoint(self) -> Path:
        """Write the EMA weights, the card and the resumable state (each atomically)."""
        self.losses = dict(self._smoothed) or self.losses
        self.run_log[-1]["end_step"] = self.step
        wall = self.wall + time.time() - self._t0
        cpu = self.cpu + _cpu_seconds() - self._c0
        weights = self.out / f"{self.name}.pt"
        _atomic_save(self.export(self.ema), weights)
        card = dict(
            name=self.name,
            made_by=self.made_by,
            args={k: v for k, v in vars(self.args).items() if k not in ("out", "fresh")},
            steps=self.step,
            wall_minutes=round(wall / 60, 2),
            cpu_minutes=round(cpu / 60, 2),
            runs=self.runs,
            run_log=self.run_log,
            final_losses={k: round(v, 5) for k, v in self.losses.items()},
            loss_history=self.history[-400:],
            data_seed=self.args.seed,
            ema_decay=self.ema_decay,
            machine=dict(platform=platform.platform(), processor=platform.machine(),
                         cpu_count=os.cpu_count(), threads=torch.get_num_threads()),
            torch_version=torch.__version__,
            weights_file=weights.name,
            sha256=sha256_file(weights),
            bytes=weights.stat().st_size,
            **self.extra_card,
        )
        text = json.dumps(card, indent=1) + "\n"
        atomic_write(self.out / f"{self.name}.json", lambda tmp: Path(tmp).write_text(text))
        _atomic_save(dict(model=self.model.state_dict(), ema=self.ema.state_dict(), opt=self.opt.state_dict(),
                          step=self.step, wall=wall, cpu=cpu, losses=self.losses,
                          history=json.dumps(self.history), runs=self.runs,
                          run_log=json.dumps(self.run_log)),
                     self.out / f"{self.name}.state.pt")
        self._last_ckpt = time.time()
        print(f"[{self.name}] checkpoint at step {self.step} -> {weights}", flush=True)
        if self.on_checkpoint is not None:
            self.on_checkpoint(self)
        return weights
