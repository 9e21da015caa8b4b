"""Chips the course compares: datasheet accelerators, a laptop chip and a phone chip.

Every figure comes from course_lib.references (dense figures, no sparsity).
A chip here is three numbers that decide how fast a model runs on it: peak
compute (FLOP/s), memory bandwidth (bytes/s) and memory size (bytes).
`this_machine(...)` builds the same record from what you measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from course_lib import references, validate


@dataclass(frozen=True)
class Device:
    """One chip. `peak_flops` is None where the vendor publishes no comparable figure."""

    key: str
    name: str
    kind: str  # "datacenter", "laptop", "phone" or "this machine"
    peak_flops: float | None  # FLOP/s (dense); for the laptop NPU: operations/s as stated
    bandwidth: float  # bytes/s
    memory: float  # bytes
    power_watts: float | None = None  # maximum board/chip power where published
    source: str = ""

    def __post_init__(self) -> None:
        for field in ("key", "name", "kind", "source"):
            validate.instance(field, getattr(self, field), str)
        for field in ("bandwidth", "memory", "peak_flops", "power_watts"):
            value = getattr(self, field)
            if value is not None or field in ("bandwidth", "memory"):
                validate.positive(f"{self.name}: {field}", value)


def _datasheet(key: str, name: str) -> Device:
    peak = references.get(f"{key}.peak_flops")
    return Device(key, name, "datacenter", peak.value, references.value(f"{key}.bandwidth"),
                  references.value(f"{key}.memory"), references.value(f"{key}.power"),
                  peak.source)


def _catalogue() -> dict[str, Device]:
    chips = [
        _datasheet("a100_sxm_80gb", "NVIDIA A100 SXM 80GB"),
        _datasheet("h100_sxm", "NVIDIA H100 SXM"),
        _datasheet("h100_pcie", "NVIDIA H100 PCIe"),
        # Apple states the Neural Engine's operations/s without a precision; it stands in
        # for the laptop's peak (the GPU's FLOP/s are not published by Apple).
        Device("apple_m4", "Apple M4 (MacBook Pro 14-inch)", "laptop",
               references.value("apple_m4.neural_engine_ops"),
               references.value("apple_m4.bandwidth"), references.value("apple_m4.memory"),
               None, references.get("apple_m4.bandwidth").source),
        # Qualcomm publishes no peak FLOP/s for this chip: decode speed and fit need only
        # bandwidth and memory, which it does publish.
        Device("snapdragon_8_gen3", "Qualcomm Snapdragon 8 Gen 3 (phone)", "phone", None,
               references.value("snapdragon_8_gen3.bandwidth"),
               references.value("snapdragon_8_gen3.memory"), None,
               references.get("snapdragon_8_gen3.bandwidth").source),
    ]
    return {chip.key: chip for chip in chips}


DEVICES: dict[str, Device] = _catalogue()


def names() -> list[str]:
    """Keys of every catalogued chip, in table order."""
    return list(DEVICES)


@validate.checked
def get(key: str | Device) -> Device:
    """The chip called `key`; a ValueError lists the valid names when it is unknown."""
    if isinstance(key, Device):
        return key
    try:
        return DEVICES[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown chip key {key!r}; valid choices: {', '.join(DEVICES)}") from None


@validate.checked
def this_machine(peak_flops: float | None, bandwidth: float, memory: float,
                 name: str = "this machine (measured)") -> Device:
    """A Device from your own measurements: FLOP/s, bytes/s and bytes of memory."""
    return Device("this_machine", name, "this machine", peak_flops, bandwidth, memory, None,
                  "measured on this machine")


@validate.checked
def citations(key: str) -> list[str]:
    """The references behind one chip's figures, as printable citations."""
    get(key)
    return [entry.cite() for entry in references.entries(f"{key}.")]
