"""The fast lane: ``python -m pytest -m "not slow" tests`` leaves out what takes minutes — every lesson
under nbval, the browser tests, the Ray tests and unit tests marked ``@pytest.mark.slow`` — for a
developer's edit-test loop. CI runs everything (the README's test command has no ``-m``)."""

from pathlib import Path

import pytest

#: Test files that are slow as a whole (a real browser; a Ray cluster; the toy world's judged edits,
#: whose one module fixture runs three edits at the paper's 100 steps for all five tests).
SLOW_FILES = ("tests/browser/", "tests/test_sweep_ray.py", "tests/test_toy_semantics.py")
#: The longest unit tests (with all their parameters), measured: a ``--durations=60`` run of the fast
#: lane on this project's busy 2-core machine put these above 4 s each, together 86 % of its time.
#: Re-measure with ``python -m pytest -m "not slow" tests --durations=30`` when the lane grows.
SLOW_TESTS = frozenset({
    "tests/test_benchmarks_smoke.py::test_compare_counts_one_forward_per_step_for_blendlab_and_two_for_reference",
    "tests/test_benchmarks_smoke.py::test_quick_benchmark_result_structure_and_report",
    "tests/test_benchmarks_smoke.py::test_toyworld_eval_records_a_run_that_stopped_on_nan_instead_of_crashing",
    "tests/test_benchmarks_smoke.py::test_toyworld_eval_smoke",
    "tests/test_bd_vs_bld.py::test_a_one_edit_run_writes_a_report_of_the_same_shape",
    "tests/test_build_lesson.py::test_one_wrong_line_fails_the_check_where_it_matters",
    "tests/test_build_lesson.py::test_the_lessons_step_matches_the_library",
    "tests/test_cli.py::test_console_script_runs",
    "tests/test_cli.py::test_demo_end_to_end_in_the_toy_world",
    "tests/test_cli_console.py::test_a_sweep_whose_batch_will_not_fit_is_refused_before_any_row",
    "tests/test_cli_console.py::test_batch_that_will_not_fit_is_refused_at_once_naming_the_size_that_fits",
    "tests/test_cli_console.py::test_ctrl_c_during_edit_is_one_line_status_130_and_writes_nothing",
    "tests/test_cli_console.py::test_ctrl_c_during_sweep_keeps_finished_rows_and_says_how_to_resume",
    "tests/test_cli_console.py::test_threads_flag_is_in_force_before_models_load",
    "tests/test_cli_outputs.py::test_figures_show_source_mask_and_edited_titled_with_prompt_and_distance",
    "tests/test_cli_outputs.py::test_output_folder_holds_the_references_files_and_ranked_json",
    "tests/test_cli_outputs.py::test_reference_ranking_uses_the_unnormalised_distances",
    "tests/test_cli_outputs.py::test_without_mask_no_mask_asset_and_no_figures_flag",
    "tests/test_clip_resolution.py::test_clip_and_unet_sizes_differ",
    "tests/test_clip_resolution.py::test_guided_pruned_edit_and_every_ranking_are_finite",
    "tests/test_fast_modes.py::test_explicit_defaults_reproduce_the_paper_trajectory_bit_for_bit",
    "tests/test_fast_modes.py::test_guidance_every_k_computes_on_every_kth_step_only",
    "tests/test_hooks_apps.py::test_extrapolate_grows_canvas_per_side",
    "tests/test_hooks_apps.py::test_object_edit_is_edit",
    "tests/test_hooks_apps.py::test_progress_bar_counts_steps",
    "tests/test_hooks_apps.py::test_recorder_every_k_downscaled_on_cpu",
    "tests/test_hooks_apps.py::test_recorder_matches_state_and_stays_within_budget",
    "tests/test_mask_front_doors.py::test_the_cli_refuses_a_mask_of_another_aspect_ratio_in_one_line",
    "tests/test_mask_front_doors.py::test_the_cli_resizes_a_mask_of_the_same_aspect_with_a_one_line_warning",
    "tests/test_models.py::test_fast_paths_give_the_same_edit",
    "tests/test_notebook_setup.py::test_a_failed_install_ends_the_first_cell_with_one_sentence",
    "tests/test_packaging.py::test_every_import_of_the_tests_and_lessons_is_declared",
    "tests/test_quality_per_second.py::test_quick_benchmark_on_tiny_counts_forwards_backwards_and_views",
    "tests/test_readme.py::test_the_python_example_runs_and_writes_what_it_says",
    "tests/test_sampler.py::test_blend_is_exact_and_background_has_forward_statistics",
    "tests/test_sampler.py::test_ddim_eta_adds_noise_and_zero_eta_is_deterministic",
    "tests/test_sampler.py::test_edit_result_ranking",
    "tests/test_sampler.py::test_enforce_background_pastes_input_bit_for_bit",
    "tests/test_sampler.py::test_full_mask_unblended_trajectory_equals_guided_diffusion_loop",
    "tests/test_sampler.py::test_guidance_lowers_clip_distance",
    "tests/test_sampler.py::test_pruning_keeps_the_best_ranked_and_off_reproduces_unpruned",
    "tests/test_sampler.py::test_reference_ranking_prunes_by_the_unnormalised_distance",
    "tests/test_sampler.py::test_same_seed_same_result_and_hooks_change_trajectory",
    "tests/test_sampler.py::test_the_finiteness_check_changes_nothing_in_a_finite_run",
    "tests/test_sampler.py::test_the_issues_skip_0_run_stops_with_a_clear_error_at_its_first_non_finite_step",
    "tests/test_step_check.py::test_a_loss_of_your_own_guides_both_steps",
    "tests/test_sweep.py::test_grid_and_metric_plot",
    "tests/test_sweep.py::test_local_run_records_resumes_and_keeps_failed_rows",
    "tests/test_threads.py::test_import_blendlab_asks_openmp_to_sleep_before_torch_loads",
    "tests/test_trajectory.py::test_recorder_keeps_the_context_of_the_run",
    "tests/test_typography.py::test_anti_typography_lowers_textness_from_the_same_seed",
    "tests/test_viz.py::test_figures_are_legible_in_a_notebook_column",
    "tests/test_viz.py::test_importable_without_display_and_without_pyplot",
    "tests/test_widgets.py::test_editor_in_the_toy_world_offers_toy_scenes_and_edits_them",
})


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).resolve().parent
    for item in items:
        path = Path(str(item.fspath)).resolve()
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        base = f"{rel}::{item.originalname}" if hasattr(item, "originalname") else ""
        if path.suffix == ".ipynb" or rel.startswith(SLOW_FILES) or base in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
