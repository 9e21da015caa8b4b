"""Notebook 07's figures (course_lib.figures.hardware) and on-device explorer
(course_lib.explorers.hardware): Axes in, Axes out, titles from the data, course colours."""

import math

import pytest
from matplotlib.colors import to_hex

from course_lib import devices, references, roofline
from course_lib.explorers.hardware import fit_explorer
from course_lib.figures import hardware
from course_lib.figures.base import colors, new_figure
from course_lib.shapes import ModelShape

PALETTE = {to_hex(c) for c in colors()} | {"#000000"}


def axes():
    return new_figure()[1][0]


def line_colors(ax):
    return {to_hex(line.get_color()) for line in ax.get_lines()}


def model(params=1e6):
    return ModelShape("test model", params, lambda context: 2 * params, 100.0)


def measured(batches=(1, 4, 16), seconds=1e-3):
    return [(roofline.decode_step(model(), b, 8, "fp32"), seconds) for b in batches]


def test_plot_roof_draws_in_the_course_palette_and_returns_its_axes():
    ax = axes()
    assert hardware.plot_roof(ax, 1e11, 1e10, "a chip") is ax
    assert line_colors(ax) == {to_hex(colors()[0])}
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert "10 FLOP/byte" in ax.get_title()


def test_measured_roofline_title_states_how_far_training_is_below_its_roof():
    ax = axes()
    train = roofline.training_step(model(), 4, 8)
    roof = roofline.attainable_flops(train.intensity, 1e11, 1e10)
    out = hardware.plot_measured_roofline(ax, 1e11, 1e10, (train, train.flops / (roof / 4)),
                                          {"tiny model": measured()})
    assert out is ax
    assert "1/4.0 of its roof" in ax.get_title()
    assert line_colors(ax) <= PALETTE
    assert [t.get_text() for t in ax.texts] == ["b=1", "b=4", "b=16"]


@pytest.mark.parametrize("ridge_batch, words", [(12.3, "flattens at batch 12 (tiny model)"),
                                                (None, "never reaches")])
def test_decode_throughput_title_gives_the_ridge_batch(ridge_batch, words):
    ax = axes()
    hardware.plot_decode_throughput(ax, {"tiny model": measured()}, 1e11, 1e10, ridge_batch,
                                    "tiny model")
    assert words in ax.get_title()
    assert line_colors(ax) <= PALETTE | {"#808080"}


@pytest.mark.parametrize("seconds, words", [
    ({4: 1e-3, 16: 1e-3, 64: 1e-3}, "yet measured tokens/s grow 4.0x from batch 16 to 64"),
    ({4: 1e-3, 16: 1e-3, 64: 4e-3}, "flatten too (1.0x from batch 16 to 64)")])
def test_decode_throughput_title_says_what_the_measured_line_does_past_the_ridge(seconds,
                                                                                 words):
    points = [(roofline.decode_step(model(), b, 8, "fp32"), t) for b, t in seconds.items()]
    ax = axes()
    hardware.plot_decode_throughput(ax, {"tiny model": points}, 1e11, 1e10, 12.3, "tiny model")
    assert words in ax.get_title()


def test_each_models_measured_line_and_its_bound_share_a_colour():
    ax = axes()
    sweeps = {"tiny model": measured(), "wider model": measured(seconds=4e-3)}
    hardware.plot_decode_throughput(ax, sweeps, 1e11, 1e10, None)
    by_label = {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()}
    for name in sweeps:
        assert by_label[f"{name}: measured"] == by_label[f"{name}: roofline bound"]
    assert len({by_label[f"{name}: measured"] for name in sweeps}) == 2


def test_step_names_on_the_chip_rooflines_never_overlap():
    llama8 = roofline.real_model_shape("llama3_8b")
    steps = [roofline.decode_step(llama8, b, 2048) for b in (1, 8, 64, 512)]
    steps += [roofline.prefill_step(llama8, 1, 2048), roofline.training_step(llama8, 8, 2048)]
    figure, (ax,) = new_figure(8, 5)
    hardware.plot_chip_rooflines(ax, ["h100_sxm", "a100_sxm_80gb", "apple_m4"], steps, "X")
    renderer = figure.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in ax.texts]
    assert len(boxes) == len(steps)
    for i, box in enumerate(boxes):
        for other in boxes[i + 1:]:
            assert not box.overlaps(other), (box, other)


def test_chip_rooflines_say_where_llama_decode_and_training_sit():
    llama8 = roofline.real_model_shape("llama3_8b")
    steps = [roofline.decode_step(llama8, b, 2048) for b in (1, 8, 64, 512)]
    steps += [roofline.prefill_step(llama8, 1, 2048), roofline.training_step(llama8, 8, 2048)]
    ax = axes()
    hardware.plot_chip_rooflines(ax, ["h100_sxm", "a100_sxm_80gb", "apple_m4"], steps,
                                 "Llama 3 8B")
    assert ax.get_title() == ("Llama 3 8B decode sits left of every ridge; prefill and "
                              "training sit right")
    assert len(ax.get_legend().get_texts()) == 3


def test_a_step_between_ridges_is_said_to_straddle_them():
    ax = axes()
    step = roofline.StepCost("decode b=9", flops=200.0, bytes_moved=1.0, tokens=9)
    hardware.plot_chip_rooflines(ax, ["h100_sxm", "a100_sxm_80gb"], [step], "X")
    assert ax.get_title() == "X decode straddles the ridges"


def test_chip_rooflines_need_a_published_peak():
    with pytest.raises(ValueError, match="no published peak"):
        hardware.plot_chip_rooflines(axes(), ["snapdragon_8_gen3"], [], "X")


def test_plot_fit_colours_bars_that_fit_and_that_do_not():
    ax = axes()
    memory = devices.get("snapdragon_8_gen3").memory
    hardware.plot_fit(ax, "snapdragon_8_gen3", memory / 1.5)  # fits at int8 and int4 only
    fits, too_big = (to_hex(c) for c in colors()[:2])
    assert [to_hex(bar.get_facecolor()) for bar in ax.patches] == [too_big, fits, fits]
    assert ax.get_title().endswith("fits at int8, int4")


# --- The on-device explorer ---------------------------------------------------------------


def test_fit_explorer_redraws_and_changes_its_verdict_when_sliders_move():
    explorer = fit_explorer(chip="snapdragon_8_gen3", params=1e9, usable_fraction=0.5)
    text, image = explorer.readout.value, explorer.image.value
    assert "too big" not in text and "tokens/s" in text
    explorer.controls["params"].value = 1e11
    assert explorer.readout.value != text and explorer.image.value != image
    assert explorer.readout.value.count("too big") == 3  # 100B fits a phone at no precision
    explorer.set(chip="h100_sxm", usable_fraction=1.0)
    assert "NVIDIA H100 SXM" in explorer.readout.value and "tokens/s" in explorer.readout.value


def test_fit_explorer_defaults_to_llama3_8b():
    explorer = fit_explorer()
    assert explorer.controls["params"].value == pytest.approx(
        references.value("llama3_8b.params"), rel=1e-3)


def test_fit_explorer_extreme_positions_never_show_an_error():
    explorer = fit_explorer()
    for chip in devices.names():
        for params in (explorer.controls["params"].min, explorer.controls["params"].max):
            explorer.set(chip=chip, params=10**params, usable_fraction=0.1)
            assert "Cannot compute" not in explorer.readout.value
            assert "nan" not in explorer.readout.value.lower()
            assert "inf " not in explorer.readout.value.lower()
            assert not math.isnan(explorer.axes[0].get_ylim()[1])


def test_fit_explorer_refuses_an_unknown_chip_and_lists_the_valid_ones():
    with pytest.raises(ValueError, match="pixel_9") as error:
        fit_explorer(chip="pixel_9")
    for name in devices.names():
        assert name in str(error.value)
