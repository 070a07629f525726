"""The step plan: worked out once, equal to guided-diffusion's own respacing, and what the loop runs."""

import pytest
import torch
from guided_diffusion.respace import space_timesteps

import blendlab as bl
from blendlab.config import EditConfig
from blendlab.errors import InputError
from blendlab.models import create_diffusion
from blendlab.plan import plan_steps


@pytest.mark.parametrize("respacing, skip", [("100", 25), ("40", 10), ("ddim25", 5), ("10,10,10", 3)])
def test_the_plan_is_guided_diffusions_respacing_minus_the_skipped_steps(tiny, respacing, skip):
    cfg = EditConfig(prompt="rock", timestep_respacing=respacing, skip_timesteps=skip)
    diffusion = create_diffusion(tiny, respacing)
    plan = plan_steps(diffusion, cfg)
    kept = sorted(space_timesteps(1000, respacing))
    assert [s.t for s in plan] == kept[::-1][skip:]  # high to low, the first `skip` left out
    assert [s.k for s in plan] == list(range(len(kept) - skip)) and len(plan) == cfg.num_steps
    assert plan.indices == list(range(len(kept) - skip))[::-1]
    assert [s.alpha_bar for s in plan] == [float(diffusion.alphas_cumprod[i]) for i in plan.indices]
    assert (plan.total, plan.skipped) == (len(kept), skip)


def test_the_plan_holds_the_fast_modes_and_the_prune_point(tiny):
    cfg = EditConfig(prompt="rock", timestep_respacing="20", skip_timesteps=4, guidance_every=3,
                     late_aug_num=2, late_at=0.5, prune_at=0.25, keep=2, batch_size=4)
    plan = plan_steps(create_diffusion(tiny, "20"), cfg)
    assert [s.guidance for s in plan] == [cfg.guidance_at(k) for k in range(16)]
    assert [s.guidance for s in plan][:4] == ["compute", "reuse", "reuse", "compute"]
    assert [s.views for s in plan] == [8] * 8 + [2] * 8
    assert plan.prune_index == cfg.prune_index == 3 and [s.prune for s in plan].count(True) == 1
    unguided = plan_steps(create_diffusion(tiny, "20"), cfg.replace(prompt=""))
    assert {s.guidance for s in unguided} == {"none"}
    rows = plan.table()
    assert len(rows) == 16 and rows[0]["step"] == "0/16" and rows[3]["prune after"] == "yes"


def test_building_a_plan_reads_the_respacing_a_fixed_number_of_times(tiny, monkeypatch):
    import guided_diffusion.respace as respace

    diffusion = create_diffusion(tiny, "100")
    calls = []
    real = respace.space_timesteps
    monkeypatch.setattr(respace, "space_timesteps", lambda *a: (calls.append(a), real(*a))[1])
    counts = []
    for skip, respacing in ((25, "100"), (10, "100")):
        calls.clear()
        cfg = EditConfig(prompt="rock", timestep_respacing=respacing, skip_timesteps=skip, guidance_until=0.5,
                         late_aug_num=2, late_at=0.5, prune_at=0.3, keep=2, batch_size=4)
        plan = plan_steps(diffusion, cfg)
        counts.append(len(calls))
        assert len(plan) == 100 - skip
        assert [s.guidance for s in plan] == [cfg.guidance_at(k) for k in range(len(plan))]
        assert [s.views for s in plan] == [cfg.views_at(k) for k in range(len(plan))]
    assert counts[0] == counts[1] <= 3, counts  # the prune point's few reads, not one per step


def test_the_sampler_runs_its_plan_and_an_edit_builds_it_once(tiny, image, mask, monkeypatch):
    cfg = EditConfig(prompt="rock", timestep_respacing="8", skip_timesteps=2, batch_size=2, iterations_num=3,
                     aug_num=2, seed=3)
    calls = []
    import blendlab.runner as runner

    real = runner.plan_steps
    monkeypatch.setattr(runner, "plan_steps", lambda *a, **k: calls.append(1) or real(*a, **k))
    rec = bl.Recorder(fields=("x_prev",))
    bl.edit(tiny, image, mask, cfg, hooks=[rec], progress=False)
    assert calls == [1]  # one plan for three batches
    plan = plan_steps(create_diffusion(tiny, "8"), cfg)
    assert [s.timestep for s in rec.steps[:len(plan)]] == [p.t for p in plan]


def test_a_plan_for_other_settings_is_refused(tiny, image, mask):
    cfg = EditConfig(prompt="rock", timestep_respacing="8", skip_timesteps=2)
    other = plan_steps(create_diffusion(tiny, "10"), cfg.replace(timestep_respacing="10"))
    with pytest.raises(InputError, match="step plan is for timestep_respacing='10'"):
        bl.BlendedSampler(tiny, image, mask, cfg, plan=other)


def test_a_plan_changes_no_draw(tiny, image, mask):
    cfg = EditConfig(prompt="rock", timestep_respacing="8", skip_timesteps=2, batch_size=2, aug_num=2, seed=5)
    a = bl.BlendedSampler(tiny, image, mask, cfg).run()
    diffusion = create_diffusion(tiny, "8")
    b = bl.BlendedSampler(tiny, image, mask, cfg, diffusion=diffusion, plan=plan_steps(diffusion, cfg)).run()
    assert torch.equal(a, b)


def test_a_step_takes_its_times_from_the_plan_and_the_old_call_still_works(tiny, image, mask):
    cfg = EditConfig(prompt="rock", timestep_respacing="8", skip_timesteps=2, batch_size=2, aug_num=2, seed=5)
    sampler = bl.BlendedSampler(tiny, image, mask, cfg)
    x = sampler.start()
    state = sampler.step(0, x, seed=3)
    planned = sampler.plan[0]
    assert (state.index, state.respaced_index, state.timestep) == (0, planned.respaced_index, planned.t)
    again = bl.BlendedSampler(tiny, image, mask, cfg)
    again.start()
    i = planned.respaced_index
    t = torch.full((2,), i, dtype=torch.long)
    with pytest.warns(DeprecationWarning, match=r"step\(k, x"):
        old = again.step(0, i, t, x, {}, 3)
    assert torch.equal(old.x_prev, state.x_prev) and old.index == 0


def test_the_plans_old_index_name_warns_and_gives_the_respaced_index(tiny):
    cfg = EditConfig(prompt="rock", timestep_respacing="8", skip_timesteps=2)
    planned = plan_steps(create_diffusion(tiny, "8"), cfg)[0]
    with pytest.warns(DeprecationWarning, match="respaced_index"):
        assert planned.index == planned.respaced_index == 5
