"""Energy of a piece of work: measured by the CPU's energy counters, or estimated.

Linux exposes the CPU package's energy counters (RAPL, under /sys/class/powercap) on many
machines; containers and virtual machines usually hide them. `measure_energy` reads them
when it can and otherwise multiplies the elapsed time by an assumed power, labelling the
result an estimate. Notebook 07 turns it into energy per token.

Arithmetic layer: standard library only (the counters are plain files).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from course_lib import references, validate

RAPL_ROOT = Path("/sys/class/powercap")
# An assumption, not a measurement (cited as such in course_lib.references).
ASSUMED_CPU_WATTS = references.value("assumption.cpu_package_watts")


@dataclass(frozen=True)
class EnergyMeasurement:
    """Energy of one piece of work: measured by counters, or estimated as time x power."""

    joules: float
    seconds: float
    measured: bool  # True: from the machine's energy counters; False: an estimate
    source: str

    @property
    def watts(self) -> float:
        """Average power over the work, W."""
        return self.joules / self.seconds

    def label(self) -> str:
        """'measured' or 'estimate', for printing beside the number."""
        return "measured" if self.measured else "estimate"


@validate.checked
def rapl_counters(root: Path = RAPL_ROOT) -> list[Path]:
    """Readable package-level energy counters (Linux RAPL), or [] when there are none.

    Containers and virtual machines usually hide them or make them readable by root only.
    """
    found = []
    for domain in sorted(Path(root).glob("intel-rapl:*")):
        counter = domain / "energy_uj"
        if domain.name.count(":") == 1 and counter.exists():  # packages, not sub-domains
            try:
                int(counter.read_text())
            except (OSError, ValueError):
                continue
            found.append(domain)
    return found


def _read_microjoules(domains: list[Path]) -> list[int]:
    return [int((domain / "energy_uj").read_text()) for domain in domains]


def _joules_between(domains: list[Path], before: list[int], after: list[int]) -> float:
    """Joules counted by every domain between two readings, allowing for wrap-around."""
    joules = 0.0
    for domain, first, last in zip(domains, before, after, strict=True):
        delta = last - first
        if delta < 0:  # the counter wrapped around
            delta += int((domain / "max_energy_range_uj").read_text())
        joules += delta / 1e6
    return joules


@validate.checked
def measure_energy(work: Callable[[], object], assumed_watts: float = ASSUMED_CPU_WATTS,
                   root: Path = RAPL_ROOT) -> EnergyMeasurement:
    """Run `work()` once and return its energy in joules.

    With readable RAPL counters the energy is measured (the whole CPU package, so other
    programs running at the same time count too). Without them it is an estimate:
    elapsed seconds x assumed_watts, a number you can change.
    """
    watts = validate.positive("assumed_watts", assumed_watts)
    domains = rapl_counters(root)
    before = _read_microjoules(domains)
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    if domains:
        joules = _joules_between(domains, before, _read_microjoules(domains))
        return EnergyMeasurement(joules, seconds, True,
                                 f"RAPL energy counters ({len(domains)} package(s))")
    return EnergyMeasurement(seconds * watts, seconds, False,
                             f"estimate: {seconds:.3g} s x {watts:g} W assumed "
                             "(no readable energy counters)")


def energy_per_token(joules: float, tokens: float) -> float:
    """Joules per token."""
    per_token = (validate.positive("joules", joules, allow_zero=True)
                 / validate.positive("tokens", tokens))
    return validate.result("joules per token", per_token, joules=joules, tokens=tokens)


def joules_to_wh(joules: float) -> float:
    """Watt-hours from joules (1 Wh = 3600 J)."""
    return validate.positive("joules", joules, allow_zero=True) / 3600.0
