"""Reconcile on start: the cloud is the truth for what exists, the store for who owns it.

Order: settle the intents a crash left behind (finish or undo half-done cloud operations), list
the node's secondary ENIs, hand them and the store's owners to the core's ``restore``, delete the
records whose address no longer exists, and re-run the (idempotent) datapath of live pods. Pods
whose netns is gone are returned so the daemon releases them once it serves.

Everything here is synchronous cloud work: the daemon runs it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from terway.cloud.api import CloudAPI, Eni
from terway.cloud.errors import CloudError, ErrorClass
from terway.daemon import logfmt
from terway.daemon.driver import INTENT_CREATE, INTENT_RELEASE
from terway.daemon.executor import Executor
from terway.daemon.store import Intent, Store
from terway.ipam.settings import CREATOR_TAG

log = logfmt.get("reconcile")


@dataclass
class Settled:
    """What settling the intents did (for logs and tests)."""

    cleared: list[str] = field(default_factory=list)
    deleted_enis: list[str] = field(default_factory=list)
    kept_enis: list[str] = field(default_factory=list)


def settle_intents(store: Store, cloud: CloudAPI, executor: Executor,
                   instance_id: str) -> Settled:
    """Finish or undo every intent; an intent whose cloud call fails stays for the next start."""
    out = Settled()
    for intent in store.intents():
        try:
            eni_id = _settle(intent, cloud, executor, instance_id, out)
        except CloudError as err:
            log.warning("could not settle intent; will retry at next start",
                        extra=logfmt.fields(kind=intent.kind, intent=intent.token,
                                            error=err.describe()))
            continue
        store.clear_intent(intent.token)
        out.cleared.append(intent.token)
        log.info("settled intent", extra=logfmt.fields(kind=intent.kind, intent=intent.token,
                                                       eni=eni_id or ""))
    return out


def _settle(intent: Intent, cloud: CloudAPI, executor: Executor, instance_id: str,
            out: Settled) -> str | None:
    p = intent.params
    if intent.kind == INTENT_CREATE:
        eni_id = p.get("eni_id") or _recreate(intent, cloud)
    elif intent.kind == INTENT_RELEASE:
        eni_id = str(p["eni_id"])
    else:  # assign/unassign: the cloud's IP list is the truth; restore frees what nobody owns
        return None
    if not eni_id:
        return None
    eni = _describe(cloud, str(eni_id))
    if eni is None:
        return str(eni_id)
    if eni.instance_id == instance_id and eni.status in ("InUse", "Attaching"):
        executor.wait_attached(eni.eni_id, instance_id)  # ours: restore picks it up
        out.kept_enis.append(eni.eni_id)
        return eni.eni_id
    if eni.instance_id and eni.instance_id != instance_id:
        return eni.eni_id  # someone else's now: not ours to touch
    if eni.status == "Detaching":
        executor.wait_detached(eni.eni_id)
    _delete(cloud, eni.eni_id)
    out.deleted_enis.append(eni.eni_id)
    return eni.eni_id


def _recreate(intent: Intent, cloud: CloudAPI) -> str | None:
    """Ask again with the same ClientToken: the cloud returns the ENI if the first call made one.

    If the token is no longer remembered this creates a fresh ENI, which is then deleted like
    any unattached one: net effect zero, never a leak.
    """
    p = intent.params
    token = str(p.get("client_token") or "")
    if not token:
        return None
    try:
        eni = cloud.create_network_interface(
            vswitch_id=str(p["vswitch_id"]),
            security_group_ids=[str(s) for s in p.get("security_group_ids", [])],
            secondary_ip_count=int(p.get("secondary_ip_count", 0)),
            tags={str(k): str(v) for k, v in dict(p.get("tags", {})).items()},
            client_token=token,   # exactly as terway.ipam.execute sent it
            resource_group_id=str(p.get("resource_group_id") or ""))
    except CloudError as err:
        if err.retryable:
            raise
        return None  # a definite "no": the first call cannot have created one either
    return eni.eni_id


def _describe(cloud: CloudAPI, eni_id: str) -> Eni | None:
    try:
        found = cloud.describe_network_interfaces(eni_ids=[eni_id])
    except CloudError as err:
        if err.error_class is ErrorClass.NOT_FOUND:
            return None
        raise
    return next((e for e in found if e.eni_id == eni_id), None)


def _delete(cloud: CloudAPI, eni_id: str) -> None:
    try:
        cloud.delete_network_interface(eni_id)
    except CloudError as err:
        if err.error_class is not ErrorClass.NOT_FOUND:
            raise


# ENIs that belong to other controllers, whatever else they carry (upstream's built-in list).
DEFAULT_TAG_BLOCK_LIST = (("creator", "alibabacloud-erdma-controller"),
                          ("terway.alibabacloud.com/excluded", "true"))


@dataclass(frozen=True)
class Ownership:
    """Which attached ENIs terwayd manages: those it (or upstream Terway) created - tagged
    ``creator=terway`` - that carry every ``eni_tag_filter`` tag and no blocked tag. Anything
    else on the node belongs to someone else and is never adopted, changed or freed."""

    tag_filter: Mapping[str, str] = field(default_factory=dict)
    block_list: tuple[tuple[str, str], ...] = ()

    def manages(self, eni: Eni) -> bool:
        tags = eni.tags
        if tags.get(CREATOR_TAG[0]) != CREATOR_TAG[1]:
            return False
        if any(tags.get(k) != v for k, v in self.tag_filter.items()):
            return False
        return not any(tags.get(k) == v for k, v in (*DEFAULT_TAG_BLOCK_LIST, *self.block_list))


def node_enis(cloud: CloudAPI, executor: Executor, instance_id: str,
              metadata_macs: set[str] | None,
              ownership: Ownership | None = None) -> tuple[list[Eni], list[Eni]]:
    """The node's secondary ENIs in use that we manage (waiting out any still Attaching),
    and the foreign ones (attached, not ours: left alone, but they take ENI slots)."""
    out: list[Eni] = []
    foreign: list[Eni] = []
    for eni in cloud.describe_network_interfaces(instance_id=instance_id):
        if eni.eni_type == "Primary":
            continue
        if ownership is not None and not ownership.manages(eni):
            foreign.append(eni)
            continue
        if eni.status == "Attaching":
            eni = executor.wait_attached(eni.eni_id, instance_id)
        if eni.status != "InUse":
            log.warning("ignoring ENI not in use", extra=logfmt.fields(
                eni=eni.eni_id, status=eni.status))
            continue
        if metadata_macs is not None and eni.mac.lower() not in metadata_macs:
            log.warning("ENI in use per the API but not in instance metadata yet",
                        extra=logfmt.fields(eni=eni.eni_id, mac=eni.mac))
        out.append(eni)
    return sorted(out, key=lambda e: e.eni_id), sorted(foreign, key=lambda e: e.eni_id)


def owners_from_store(store: Store) -> dict[str, str]:
    """{ip: pod key} for every resource the store says a pod holds."""
    return {res.ip: rec.key for rec in store.pods() for res in rec.resources}
