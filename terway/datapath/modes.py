"""The datapath modes and the rules that set them apart, in one table.

Whatever depends on the mode outside the three mode modules (veth.py, ipvlan.py, exclusive.py)
asks this table instead of comparing names: the daemon (the mode a config selects, the prefix
and gateway a pod is given, which pods a host route finds again), the CNI plugin (the gateway in
its result) and the dispatch in terway/datapath/wiring.py. The CNI plugin imports this module on
every ADD, so it uses nothing but the interpreter itself: no dataclasses, typing, enum or
collections (each costs milliseconds per pod; docs/performance.md).
"""

from __future__ import annotations

VETH = "veth"
IPVLAN = "ipvlan"
EXCLUSIVE = "exclusive"
LINK_LOCAL_GATEWAY = "169.254.1.1"  # the pod's next hop when a host veth answers for it


class UnknownMode(ValueError):
    """A mode name the table does not hold (from a config, a record or the daemon's answer)."""


class Mode:
    """One mode's rules. Read-only: the table is shared by every caller."""

    __slots__ = (
        "host_veth",
        "link_local_gateway",
        "module",
        "name",
        "virtual_type",
        "vswitch_prefix",
        "whole_eni",
    )
    name: str                 # upstream's name, as records and the daemon's answers spell it
    module: str               # terway.datapath.<module> holds its setup, teardown and check
    virtual_type: str         # the 10-terway.conf eniip_virtual_type that selects it ("": none)
    whole_eni: bool           # the pod gets the ENI itself (its primary address), found by MAC
    host_veth: bool           # every pod has a host veth the node routes its address to
    vswitch_prefix: bool      # the pod's address carries the vSwitch prefix (else /32)
    link_local_gateway: bool  # the pod's gateway is LINK_LOCAL_GATEWAY (else the vSwitch's)

    def __init__(self, name: str, module: str, *, virtual_type: str = "",
                 whole_eni: bool = False, host_veth: bool = False,
                 vswitch_prefix: bool = False, link_local_gateway: bool = False) -> None:
        for slot, value in (("name", name), ("module", module), ("virtual_type", virtual_type),
                            ("whole_eni", whole_eni), ("host_veth", host_veth),
                            ("vswitch_prefix", vswitch_prefix),
                            ("link_local_gateway", link_local_gateway)):
            object.__setattr__(self, slot, value)

    def __setattr__(self, slot: str, value: object) -> None:
        raise AttributeError(f"datapath mode {self.name!r} is read-only")

    def __repr__(self) -> str:
        return f"Mode({self.name!r})"

    def pod_prefix_len(self, vswitch_prefix_len: int) -> int:
        """The prefix of the address on the pod's interface, given its vSwitch's."""
        return vswitch_prefix_len if self.vswitch_prefix else 32

    def pod_gateway(self, vswitch_gateway: str) -> str:
        """The pod's default gateway (the CNI result's), given its vSwitch's."""
        return LINK_LOCAL_GATEWAY if self.link_local_gateway else vswitch_gateway


def _table(*modes: Mode) -> dict[str, Mode]:
    table: dict[str, Mode] = {}
    for mode in modes:
        if mode.name in table:
            raise ValueError(f"datapath mode {mode.name!r} registered twice")
        table[mode.name] = mode
    return table


REGISTRY = _table(
    Mode(VETH, "veth", virtual_type="Veth", host_veth=True, link_local_gateway=True),
    Mode(IPVLAN, "ipvlan", virtual_type="IPVlan", vswitch_prefix=True),
    Mode(EXCLUSIVE, "exclusive", whole_eni=True),
)
NAMES = tuple(REGISTRY)
DEFAULT = REGISTRY[VETH]  # upstream's default, and what a record without a mode was wired with


def get(name: str) -> Mode:
    """The mode called ``name``; UnknownMode names the known ones."""
    mode = REGISTRY.get(name)
    if mode is None:
        raise UnknownMode(f"unknown datapath mode {name!r} (known: {', '.join(NAMES)})")
    return mode


def from_config(exclusive: bool, virtual_type: object = "Veth") -> Mode:
    """The mode a node runs: exclusive ENIs (``daemon_mode: ENIOnly``) whatever the CNI config
    says, else the one 10-terway.conf's ``eniip_virtual_type`` names (any case), else veth."""
    if exclusive:
        return REGISTRY[EXCLUSIVE]
    kind = str(virtual_type).lower()
    for mode in REGISTRY.values():
        if mode.virtual_type and mode.virtual_type.lower() == kind:
            return mode
    return DEFAULT
