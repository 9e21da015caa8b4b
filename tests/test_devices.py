"""course_lib.devices: the chip table, read from course_lib.references, and its errors."""

import pytest

from course_lib import devices, references


def test_catalogue_has_datacenter_laptop_and_phone_chips():
    kinds = {devices.get(name).kind for name in devices.names()}
    assert {"datacenter", "laptop", "phone"} <= kinds, kinds


def test_every_figure_comes_from_the_reference_table():
    published = {entry.value for entry in references.entries()}
    for name in devices.names():
        chip = devices.get(name)
        for field in ("peak_flops", "bandwidth", "memory", "power_watts"):
            value = getattr(chip, field)
            assert value is None or value in published, f"{name}.{field}={value} is not cited"
        assert devices.citations(name), f"{name} has no citations"


def test_datasheet_chips_use_dense_figures():
    h100 = devices.get("h100_sxm")
    assert h100.peak_flops == references.value("h100_sxm.peak_flops")
    assert "sparsity" in references.get("h100_sxm.peak_flops").what


def test_unknown_chip_lists_the_valid_choices():
    with pytest.raises(ValueError, match="valid choices") as error:
        devices.get("h200")
    for name in devices.names():
        assert name in str(error.value)


@pytest.mark.parametrize("field", ["bandwidth", "memory"])
@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_a_device_needs_positive_bandwidth_and_memory(field, bad):
    figures = {"peak_flops": 1e12, "bandwidth": 1e10, "memory": 1e9, field: bad}
    with pytest.raises(ValueError, match=field):
        devices.this_machine(**figures)


def test_zero_peak_is_refused_but_unknown_peak_is_allowed():
    with pytest.raises(ValueError, match="peak_flops"):
        devices.this_machine(0, 1e10, 1e9)
    assert devices.get("snapdragon_8_gen3").peak_flops is None
