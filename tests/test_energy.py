"""course_lib.energy: energy from RAPL counters when readable, an estimate otherwise."""

import pytest

from course_lib import energy


def fake_rapl(tmp_path, microjoules, max_range=2**32):
    domain = tmp_path / "intel-rapl:0"
    domain.mkdir()
    (domain / "energy_uj").write_text(f"{microjoules}\n")
    (domain / "max_energy_range_uj").write_text(f"{max_range}\n")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-domain (core): must not be double counted
    (tmp_path / "intel-rapl:0:0" / "energy_uj").write_text("5\n")
    return domain / "energy_uj"


def test_only_package_counters_are_found(tmp_path):
    fake_rapl(tmp_path, 1_000_000)
    assert [domain.name for domain in energy.rapl_counters(tmp_path)] == ["intel-rapl:0"]
    assert energy.rapl_counters(tmp_path / "missing") == []


def test_an_unreadable_counter_is_skipped(tmp_path):
    counter = fake_rapl(tmp_path, 1_000_000)
    counter.write_text("permission denied\n")
    assert energy.rapl_counters(tmp_path) == []


def test_energy_comes_from_rapl_counters_when_they_are_readable(tmp_path):
    counter = fake_rapl(tmp_path, 1_000_000)
    result = energy.measure_energy(lambda: counter.write_text("3500000\n"), root=tmp_path)
    assert result.measured and result.label() == "measured"
    assert result.joules == pytest.approx(2.5)
    assert result.watts == pytest.approx(2.5 / result.seconds)


def test_a_wrapped_counter_still_gives_the_energy(tmp_path):
    counter = fake_rapl(tmp_path, 9_000_000, max_range=10_000_000)
    result = energy.measure_energy(lambda: counter.write_text("1000000\n"), root=tmp_path)
    assert result.joules == pytest.approx(2.0)


def test_without_counters_energy_is_an_estimate_from_the_assumed_power(tmp_path):
    result = energy.measure_energy(lambda: sum(range(10_000)), assumed_watts=20.0,
                                   root=tmp_path)
    assert not result.measured and result.label() == "estimate"
    assert result.joules == pytest.approx(20.0 * result.seconds)
    assert "assumed" in result.source
    with pytest.raises(ValueError, match="assumed_watts"):
        energy.measure_energy(lambda: None, assumed_watts=0, root=tmp_path)


def test_energy_per_token_and_watt_hours():
    assert energy.energy_per_token(36.0, 12) == 3.0
    assert energy.joules_to_wh(3600.0) == 1.0
    with pytest.raises(ValueError, match="tokens"):
        energy.energy_per_token(1.0, 0)
