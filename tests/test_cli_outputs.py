"""`blendlab edit` writes what the reference writes (issue 13): the per-sample comparison figures,
ranked/, assets/, plus blendlab's ranked.json; --no_figures, --reference_ranking, and --preset vs
--model_output_size. (`files`: an input image and mask, from conftest.)"""

import json

import pytest
import torch
from PIL import Image

import blendlab as bl
import blendlab.runner
from blendlab.viz import results as viz_results
from blendlab.cli import build_parser, config_from_args, main
from blendlab.guidance import encode_text, masked_clip_distance

FAST = ["--preset", "tiny", "--timestep_respacing", "8", "--skip_timesteps", "4", "--batch_size", "2",
        "--iterations_num", "2", "--aug_num", "2", "--no_progress"]
SAMPLES = ["output_i_0_b_0.png", "output_i_0_b_1.png", "output_i_1_b_0.png", "output_i_1_b_1.png"]


def tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def edit_args(files, out, *extra, mask=True):
    return ["edit", "-p", "rock", "-i", str(files / "img.png"),
            *(["--mask", str(files / "mask.png")] if mask else []), "--output_path", str(out), *FAST, *extra]


def ranked_names(out):
    return [r["file"].rsplit("/", 1)[1] for r in json.loads((out / "ranked.json").read_text())["ranked"]]


def test_output_folder_holds_the_references_files_and_ranked_json(files):
    out = files / "out"
    before = {p: p.read_bytes() for p in (files / "img.png", files / "mask.png")}
    assert main(edit_args(files, out, "--export_assets")) == 0
    ranked = ranked_names(out)
    assert sorted(n.split("_", 1)[1] for n in ranked) == SAMPLES  # <distance>_<stem>_i_<it>_b_<b>.png
    assert tree(out) == sorted(
        SAMPLES                                               # one comparison figure per sample
        + ["ranked", *(f"ranked/{n}" for n in ranked)]
        + ["assets", "assets/output.png", "assets/output_mask.png", *(f"assets/{n}" for n in SAMPLES)]
        + ["ranked.json"])                                    # blendlab's one extra
    for name in SAMPLES:
        with Image.open(out / name) as fig:
            assert fig.format == "PNG" and fig.size[0] > 2 * fig.size[1]  # three panels in a row
    assert {p: p.read_bytes() for p in before} == before  # inputs untouched


@pytest.mark.filterwarnings("ignore:mask covers the whole image")
def test_without_mask_no_mask_asset_and_no_figures_flag(files):
    out = files / "out"
    assert main(edit_args(files, out, "--export_assets", mask=False)) == 0
    assets = tree(out / "assets")
    assert "output_mask.png" not in assets and assets == sorted(["output.png", *SAMPLES])
    assert all((out / n).exists() for n in SAMPLES)
    bare = files / "bare"
    assert main(edit_args(files, bare, "--no_figures")) == 0
    assert tree(bare) == sorted(["ranked", *(f"ranked/{n}" for n in ranked_names(bare)), "ranked.json"])


@pytest.mark.filterwarnings("ignore:mask covers the whole image")
def test_figures_show_source_mask_and_edited_titled_with_prompt_and_distance(files, monkeypatch):
    drawn = []
    original = viz_results.comparison_figure

    def spy(*args, **kwargs):
        fig = original(*args, **kwargs)
        drawn.append(fig)
        return fig

    monkeypatch.setattr(viz_results, "comparison_figure", spy)  # where save_comparison_figures finds it
    out = files / "out"
    assert main(edit_args(files, out)) == 0
    summary = json.loads((out / "ranked.json").read_text())["ranked"]
    titles = sorted(fig._suptitle.get_text() for fig in drawn)
    assert titles == sorted(f'Prompt: "rock" ({r["clip_distance"]:.4f})' for r in summary)
    assert all([ax.get_title() for ax in fig.axes] == ["Source Image", "Mask", "Edited Image"] for fig in drawn)
    drawn.clear()
    assert main(edit_args(files, files / "nomask", mask=False)) == 0
    assert all([ax.get_title() for ax in fig.axes] == ["Source Image", "Edited Image"] for fig in drawn)


def test_reference_ranking_uses_the_unnormalised_distances(files, monkeypatch, tiny):
    results = []
    original = blendlab.runner.edit

    def keep(*args, **kwargs):
        results.append(original(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(blendlab.runner, "edit", keep)
    out = files / "out"
    assert main(edit_args(files, out, "--reference_ranking", "--no_figures")) == 0
    (result,) = results
    assert result.cfg.reference_ranking
    text = encode_text(tiny.clip, "rock")
    reference = masked_clip_distance(tiny.clip, result.images, text, result.sample_masks, normalize=False)
    normalised = masked_clip_distance(tiny.clip, result.images, text, result.sample_masks)
    torch.testing.assert_close(result.distances, reference, rtol=0, atol=1e-5)
    assert not torch.allclose(reference, normalised, atol=1e-3)  # the switch changes the numbers
    summary = json.loads((out / "ranked.json").read_text())
    assert summary["reference_ranking"] is True
    assert [r["clip_distance"] for r in summary["ranked"]] == pytest.approx(sorted(reference.tolist()), abs=1e-5)
    assert not config_from_args(build_parser().parse_args(["edit", "-p", "x", "-i", "y.png"])).reference_ranking


@pytest.mark.parametrize("preset,size,fix", [("256-uncond", "512", "--preset 512-cond"),
                                             ("512-cond", "256", "--preset 256-uncond")])
def test_preset_contradicting_model_output_size_is_a_usage_error(files, capsys, preset, size, fix):
    out = files / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["edit", "-p", "rock", "-i", str(files / "img.png"), "--output_path", str(out),
              "--preset", preset, "--model_output_size", size])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--preset" in err and "--model_output_size" in err and fix in err and "drop --model_output_size" in err
    assert not out.exists()  # refused before loading any model or writing anything


def test_model_output_size_follows_a_real_preset_and_does_not_constrain_tiny():
    def size(*flags):
        return config_from_args(build_parser().parse_args(["edit", "-p", "x", "-i", "y.png", *flags])).model_output_size

    assert size() == bl.EditConfig().model_output_size == 256
    assert size("--preset", "512-cond") == 512 and size("--preset", "256-uncond", "--model_output_size", "256") == 256
    assert size("--preset", "tiny", "--model_output_size", "512") == 512  # tiny always works at 32 px
    assert size("--preset", "tiny-cond") == 256
