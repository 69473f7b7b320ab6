"""Instance types and their network limits.

The g6 rows are Alibaba's published g6 family table; c6/r6 share g6's network limits and g7 is
taken from the g7 family table as remembered: approximations (docs/emulator-model.md,
"Instance types").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InstanceType:
    instance_type_id: str          # "ecs.g6.large"
    family: str                    # "ecs.g6"
    cpu: int
    memory_gib: float
    eni_quantity: int              # EniQuantity: ENIs including the primary
    eni_private_ip_quantity: int   # EniPrivateIpAddressQuantity: IPv4 per ENI incl. its primary
    eni_total_quantity: int        # EniTotalQuantity
    trunk_supported: bool          # EniTrunkSupported


# size, vCPU, GiB, ENIs, IPs per ENI
_G6 = [
    ("large", 2, 8, 2, 6), ("xlarge", 4, 16, 3, 10), ("2xlarge", 8, 32, 4, 10),
    ("3xlarge", 12, 48, 6, 10), ("4xlarge", 16, 64, 8, 20), ("6xlarge", 24, 96, 8, 20),
    ("8xlarge", 32, 128, 8, 20), ("13xlarge", 52, 192, 7, 20), ("26xlarge", 104, 384, 15, 20),
]
_G7 = [
    ("large", 2, 8, 3, 6), ("xlarge", 4, 16, 4, 15), ("2xlarge", 8, 32, 4, 15),
    ("3xlarge", 12, 48, 8, 15), ("4xlarge", 16, 64, 8, 30), ("6xlarge", 24, 96, 8, 30),
    ("8xlarge", 32, 128, 8, 30), ("16xlarge", 64, 256, 8, 30), ("32xlarge", 128, 512, 15, 30),
]


def _family(name: str, rows: list[tuple[str, int, int, int, int]], mem_ratio: float,
            trunk: bool) -> dict[str, InstanceType]:
    out: dict[str, InstanceType] = {}
    for size, cpu, mem, enis, ips in rows:
        type_id = f"ecs.{name}.{size}"
        total = enis * 2 + 2 if trunk else enis
        out[type_id] = InstanceType(type_id, f"ecs.{name}", cpu, mem * mem_ratio, enis, ips,
                                    total, trunk)
    return out


CATALOG: dict[str, InstanceType] = {
    **_family("g6", _G6, 1.0, False),
    **_family("c6", _G6, 0.5, False),
    **_family("r6", _G6, 2.0, False),
    **_family("g7", _G7, 1.0, True),
}
