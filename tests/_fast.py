"""Shared test settings (a module of its own: several conftest.py files exist, so tests import
helpers from here, not from ``conftest``)."""

import blendlab as bl


def fast_cfg(**kw):
    """A few-step tiny edit configuration; keyword arguments override."""
    base = dict(prompt="rock", timestep_respacing="12", skip_timesteps=4, batch_size=2,
                iterations_num=1, aug_num=3, seed=7)
    base.update(kw)
    return bl.EditConfig(**base)
