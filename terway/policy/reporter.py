"""Warnings about NetworkPolicies, as Events on the policy: a thread beside Felix.

It watches NetworkPolicies (one more watch per node, on policies only) and, for each version of
a policy that asks for something not enforced here (``lint.problems``), logs it and creates a
Warning event ``NetworkPolicyNotEnforced`` on the policy. The event's name is derived from the
policy's uid, generation and message, so the first node to report creates it and every other
node's create is refused (409) and ignored: one event per policy version, not one per node.
"""

from __future__ import annotations

import datetime
import hashlib
import threading
from typing import Any

from terway.daemon import logfmt
from terway.policy import lint

REASON = "NetworkPolicyNotEnforced"
COMPONENT = "terway-policy"
log = logfmt.get("policy")


def event_name(meta: dict[str, Any], message: str) -> str:
    key = f"{meta.get('uid')}/{meta.get('generation')}/{message}".encode()
    return f"{meta.get('name')}.{hashlib.sha1(key).hexdigest()[:12]}"


def report(api: Any, obj: dict[str, Any], node: str, seen: set[str] | None = None
           ) -> list[str]:
    """Log and record the problems of one policy object; returns them. ``seen`` (event names
    already reported by this process) keeps a re-list from logging everything again."""
    meta, found = obj.get("metadata") or {}, lint.problems(obj.get("spec") or {})
    if not found:
        return []
    name = event_name(meta, "; ".join(found))
    if seen is not None:
        if name in seen:
            return found
        seen.add(name)
    message = "; ".join(found)
    log.warning("NetworkPolicy not fully enforced", extra=logfmt.fields(
        policy=f"{meta.get('namespace')}/{meta.get('name')}", problems=message))
    now = datetime.datetime.now(datetime.UTC).isoformat()
    event = {"apiVersion": "v1", "kind": "Event",
             "metadata": {"name": name, "namespace": meta.get("namespace")},
             "involvedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                "name": meta.get("name"), "namespace": meta.get("namespace"),
                                "uid": meta.get("uid")},
             "reason": REASON, "message": message, "type": "Warning", "count": 1,
             "source": {"component": COMPONENT, "host": node},
             "firstTimestamp": now, "lastTimestamp": now}
    try:
        api.create_namespaced_event(meta.get("namespace"), event)
    except Exception as exc:
        if getattr(exc, "status", 0) != 409:      # 409: another node reported it first
            log.warning("recording policy event failed", extra=logfmt.fields(error=str(exc)))
    return found


def watch_forever(node: str, stop: threading.Event) -> None:
    """List-then-watch NetworkPolicies until ``stop``; reconnects with a backoff."""
    from kubernetes import client, watch

    core, net = client.CoreV1Api(), client.NetworkingV1Api()
    delay, seen = 1.0, set[str]()
    while not stop.is_set():
        try:
            w = watch.Watch()  # type: ignore[no-untyped-call]
            for ev in w.stream(  # type: ignore[no-untyped-call]
                    net.list_network_policy_for_all_namespaces, timeout_seconds=300):
                if ev["type"] in ("ADDED", "MODIFIED"):
                    report(core, ev["raw_object"], node, seen)
                if stop.is_set():
                    w.stop()  # type: ignore[no-untyped-call]
            delay = 1.0
        except Exception as exc:
            log.warning("policy watch failed; retrying", extra=logfmt.fields(
                error=str(exc), retry_s=delay))
            stop.wait(delay)
            delay = min(delay * 2, 60.0)
