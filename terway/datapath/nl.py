"""A minimal rtnetlink client for the veth hot path: plain ``struct`` over an AF_NETLINK socket.

pyroute2 (4.x) runs every request through an asyncio loop and its message classes: 3-7 ms per
round trip on the loaded dev VM, ~25 of them per pod. The same requests packed here cost
~0.05-0.2 ms each (see docs/performance.md). Only what ``veth.py`` needs is here: links (get,
dump, veth add with the peer in another netns, set up/mtu/rp_filter, delete), addresses,
routes, rules and neighbours, IPv4 only. Everything else (tc, ipvlan, exclusive) stays on
pyroute2.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from terway.datapath.netns import NetnsGone, _setns, netns_path, open_netns

NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR = 20
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH = 28
RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE = 32, 33, 34

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_OPERSTATE = 1, 3, 4, 5, 16
IFLA_LINKINFO, IFLA_NET_NS_FD, IFLA_AF_SPEC = 18, 28, 26
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_INET_CONF = 1
IPV4_DEVCONF_RP_FILTER = 8
IFF_UP = 0x1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
FRA_DST, FRA_SRC, FRA_PRIORITY, FRA_TABLE = 1, 2, 6, 15
NDA_DST, NDA_LLADDR = 1, 2
RTPROT_STATIC = 4  # what pyroute2 and `ip route` scripts use for managed routes
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTN_UNICAST = 1
FR_ACT_TO_TBL = 1
NLA_F_NESTED = 0x8000

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family dst_len src_len tos table protocol scope type flags
_NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
_NLA = struct.Struct("=HH")


class NetlinkError(OSError):
    """The kernel refused a request; ``errno`` says why (EEXIST, ENODEV, ENOENT…)."""


def nla(kind: int, payload: bytes) -> bytes:
    """One attribute, padded to 4 bytes."""
    size = _NLA.size + len(payload)
    return _NLA.pack(size, kind) + payload + b"\0" * (-size & 3)


def nla_str(kind: int, text: str) -> bytes:
    return nla(kind, text.encode() + b"\0")


def nla_u32(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=I", value))


def nla_ip(kind: int, ip: str) -> bytes:
    return nla(kind, socket.inet_aton(ip))


def nla_nested(kind: int, *attrs: bytes) -> bytes:
    return nla(kind | NLA_F_NESTED, b"".join(attrs))


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attributes from ``offset`` to the end (type → payload; nested flag dropped)."""
    out: dict[int, bytes] = {}
    while offset + 4 <= len(data):
        size, kind = _NLA.unpack_from(data, offset)
        if size < 4:
            break
        out[kind & 0x3FFF] = data[offset + 4 : offset + size]
        offset += (size + 3) & ~3
    return out


class Link:
    """What the hot path needs of an RTM_NEWLINK message."""

    __slots__ = ("index", "kind", "mac", "name", "peer", "up")

    def __init__(self, body: bytes) -> None:
        _, _, self.index, flags, _ = _IFINFO.unpack_from(body)
        attrs = parse_attrs(body, _IFINFO.size)
        self.name = attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode()
        link = attrs.get(IFLA_LINK, b"")   # a veth's peer (its index in the peer's netns)
        self.peer = struct.unpack("=I", link)[0] if len(link) == 4 else 0
        self.mac = ":".join(f"{b:02x}" for b in attrs.get(IFLA_ADDRESS, b""))
        self.up = bool(flags & IFF_UP)
        info = parse_attrs(attrs.get(IFLA_LINKINFO, b""))
        self.kind = info.get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode()


class Socket:
    """One rtnetlink socket (bound to the netns it was created in); not thread-safe."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """Send one message; its replies as (type, payload) until ACK/DONE; NetlinkError."""
        self.seq += 1
        seq = self.seq
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, flags | NLM_F_REQUEST, seq, 0) + body)
        out: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(1 << 20)
            offset = 0
            while offset + _HDR.size <= len(data):
                size, mtype, mflags, mseq, _ = _HDR.unpack_from(data, offset)
                payload = data[offset + _HDR.size : offset + size]
                offset += (size + 3) & ~3
                if mseq != seq:
                    continue  # a stale reply of an interrupted earlier request
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    return out
                if mtype == NLMSG_DONE:
                    return out
                out.append((mtype, payload))
                if not mflags & NLM_F_MULTI and not flags & NLM_F_ACK:
                    return out

    def ack(self, kind: int, flags: int, body: bytes) -> None:
        self.request(kind, flags | NLM_F_ACK, body)

    # -- links -----------------------------------------------------------------------------
    def link(self, name: str = "", index: int = 0) -> Link | None:
        """One link by name or index; None when there is no such link."""
        body = _IFINFO.pack(0, 0, index, 0, 0) + (nla_str(IFLA_IFNAME, name) if name else b"")
        try:
            replies = self.request(RTM_GETLINK, 0, body)
        except NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        return Link(replies[0][1]) if replies else None

    def links(self) -> list[Link]:
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        return [Link(p) for t, p in self.request(RTM_GETLINK, NLM_F_DUMP, body) if t == RTM_NEWLINK]

    def add_veth(self, name: str, mtu: int, peer: str, peer_netns_fd: int) -> None:
        """``ip link add name mtu M type veth peer name peer mtu M netns <fd>`` (EEXIST)."""
        peer_msg = (
            _IFINFO.pack(0, 0, 0, 0, 0)
            + nla_str(IFLA_IFNAME, peer)
            + nla_u32(IFLA_MTU, mtu)
            + nla_u32(IFLA_NET_NS_FD, peer_netns_fd)
        )
        info = nla_nested(
            IFLA_LINKINFO,
            nla_str(IFLA_INFO_KIND, "veth"),
            nla_nested(IFLA_INFO_DATA, nla(VETH_INFO_PEER, peer_msg)),
        )
        body = _IFINFO.pack(0, 0, 0, 0, 0) + nla_str(IFLA_IFNAME, name) + nla_u32(IFLA_MTU, mtu)
        self.ack(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body + info)

    def set_link(
        self, index: int = 0, name: str = "", up: bool = True, mtu: int = 0,
        rp_filter: int | None = None,
    ) -> None:
        """Up (and mtu, and the IPv4 rp_filter devconf) in one request."""
        attrs = nla_str(IFLA_IFNAME, name) if name and not index else b""
        if mtu:
            attrs += nla_u32(IFLA_MTU, mtu)
        if rp_filter is not None:
            conf = nla_nested(IFLA_INET_CONF, nla_u32(IPV4_DEVCONF_RP_FILTER, rp_filter))
            attrs += nla_nested(IFLA_AF_SPEC, nla_nested(socket.AF_INET, conf))
        flags = IFF_UP if up else 0
        self.ack(RTM_NEWLINK, 0, _IFINFO.pack(0, 0, index, flags, IFF_UP) + attrs)

    def del_link(self, name: str = "", index: int = 0) -> bool:
        """Delete a link; False when it did not exist."""
        body = _IFINFO.pack(0, 0, index, 0, 0) + (nla_str(IFLA_IFNAME, name) if name else b"")
        try:
            self.ack(RTM_DELLINK, 0, body)
        except NetlinkError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    # -- addresses, neighbours, routes ------------------------------------------------------
    def add_addr(self, index: int, ip: str, prefix: int) -> None:
        """``ip addr add ip/prefix dev index``; an existing address is fine."""
        body = _IFADDR.pack(socket.AF_INET, prefix, 0, RT_SCOPE_UNIVERSE, index)
        body += nla_ip(IFA_LOCAL, ip) + nla_ip(IFA_ADDRESS, ip)
        try:
            self.ack(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)
        except NetlinkError as exc:
            if exc.errno != errno.EEXIST:
                raise

    def replace_neigh(self, index: int, ip: str, mac: str, state: int) -> None:
        body = _NDMSG.pack(socket.AF_INET, index, state, 0, 0)
        body += nla_ip(NDA_DST, ip) + nla(NDA_LLADDR, bytes.fromhex(mac.replace(":", "")))
        self.ack(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body)

    def replace_route(
        self, dst: str, dst_len: int, oif: int, gateway: str = "", table: int = 254,
        scope: int = RT_SCOPE_UNIVERSE, flags: int = 0,
    ) -> None:
        """``ip route replace dst/len [via gw] dev oif [onlink] table T scope S``."""
        body = _RTMSG.pack(
            socket.AF_INET, dst_len, 0, 0, table if table < 256 else 252, RTPROT_STATIC, scope,
            RTN_UNICAST, flags,
        )
        if dst_len:
            body += nla_ip(RTA_DST, dst)
        if gateway:
            body += nla_ip(RTA_GATEWAY, gateway)
        body += nla_u32(RTA_OIF, oif) + nla_u32(RTA_TABLE, table)
        self.ack(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body)

    def routes(self, table: int) -> list[tuple[str, int]]:
        """(dst, dst_len) of the IPv4 routes in ``table``."""
        return [(dst, dst_len) for dst, dst_len, _ in self.routes_via(table)]

    def routes_via(self, table: int) -> list[tuple[str, int, int]]:
        """(dst, dst_len, output ifindex or 0) of the IPv4 routes in ``table``."""
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        out = []
        for kind, payload in self.request(RTM_GETROUTE, NLM_F_DUMP, body):
            if kind != RTM_NEWROUTE:
                continue
            dst_len, rtm_table = payload[1], payload[4]
            attrs = parse_attrs(payload, _RTMSG.size)
            real = struct.unpack("=I", attrs[RTA_TABLE])[0] if RTA_TABLE in attrs else rtm_table
            if real == table:
                dst = socket.inet_ntoa(attrs[RTA_DST]) if RTA_DST in attrs else "0.0.0.0"
                oif = struct.unpack("=I", attrs[RTA_OIF])[0] if RTA_OIF in attrs else 0
                out.append((dst, dst_len, oif))
        return out

    def del_route(self, dst: str, dst_len: int, table: int) -> None:
        body = _RTMSG.pack(socket.AF_INET, dst_len, 0, 0, table if table < 256 else 252, 0,
                           0, 0, 0)
        if dst_len:
            body += nla_ip(RTA_DST, dst)
        body += nla_u32(RTA_TABLE, table)
        try:
            self.ack(RTM_DELROUTE, 0, body)
        except NetlinkError as exc:
            if exc.errno not in (errno.ESRCH, errno.ENOENT):
                raise

    # -- rules -----------------------------------------------------------------------------
    def rules(self) -> list[Rule]:
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        return [Rule(p) for t, p in self.request(RTM_GETRULE, NLM_F_DUMP, body) if t == RTM_NEWRULE]

    def rule(self, add: bool, priority: int, ip: str, direction: str, table: int) -> None:
        """``ip rule add|del prio P from|to ip/32 lookup table``."""
        dst_len, src_len = (32, 0) if direction == "dst" else (0, 32)
        body = _RTMSG.pack(
            socket.AF_INET, dst_len, src_len, 0, table if table < 256 else 252, 0, 0,
            FR_ACT_TO_TBL, 0,
        )
        body += nla_u32(FRA_PRIORITY, priority)
        body += nla_ip(FRA_DST if direction == "dst" else FRA_SRC, ip)
        body += nla_u32(FRA_TABLE, table)
        if add:
            self.ack(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, body)
            return
        try:
            self.ack(RTM_DELRULE, 0, body)
        except NetlinkError as exc:
            if exc.errno not in (errno.ENOENT, errno.ESRCH):
                raise


class Rule:
    """An IPv4 policy rule: priority, /32 match (``dst``/``src`` or ""), table."""

    __slots__ = ("dst", "priority", "src", "table")

    def __init__(self, body: bytes) -> None:
        _, dst_len, src_len, _, table, _, _, _, _ = _RTMSG.unpack_from(body)
        attrs = parse_attrs(body, _RTMSG.size)
        self.priority = struct.unpack("=I", attrs[FRA_PRIORITY])[0] if FRA_PRIORITY in attrs else 0
        self.table = struct.unpack("=I", attrs[FRA_TABLE])[0] if FRA_TABLE in attrs else table
        self.src = socket.inet_ntoa(attrs[FRA_SRC]) if src_len == 32 and FRA_SRC in attrs else ""
        self.dst = socket.inet_ntoa(attrs[FRA_DST]) if dst_len == 32 and FRA_DST in attrs else ""


# ---------------------------------------------------------------------------------------------
# Sockets per namespace


def socket_in(netns: str | None) -> Socket:
    """A socket in ``netns`` (None: this thread's own). The calling thread switches into the
    namespace for the ``socket()`` call and back (≈20 µs; what Go's ``ns.Do`` does with a
    locked OS thread) instead of starting a thread per socket."""
    if netns is None:
        return Socket()
    target = open_netns(netns)
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                return Socket()
            finally:
                try:
                    _setns(home)
                except OSError as exc:  # this thread would stay in the pod: never go on
                    os.write(2, f"terway: cannot return to own netns: {exc}\n".encode())
                    os._exit(70)
        finally:
            os.close(home)
    finally:
        os.close(target)


NetnsKey = tuple[str, int, int] | None
_pool_lock = threading.Lock()
_pool: dict[NetnsKey, list[Socket]] = {}


def netns_key(netns: str | None) -> NetnsKey:
    """Identity of a namespace: its path *and* inode, so a namespace deleted and recreated
    under the same name is a different key (a socket in the old one is useless)."""
    if netns is None:
        return None
    path = netns_path(netns)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NetnsGone(f"network namespace {path} does not exist") from None
    return (path, st.st_dev, st.st_ino)


@contextmanager
def host_socket(netns: str | None) -> Iterator[Socket]:
    """A pooled socket in the node's namespace: reused across pods, one user at a time."""
    key = netns_key(netns)
    with _pool_lock:
        free = _pool.setdefault(key, [])
        sock = free.pop() if free else None
    if sock is None:
        sock = socket_in(netns)
    ok = False
    try:
        yield sock
        ok = True
    finally:
        if ok:
            with _pool_lock:
                _pool.setdefault(key, []).append(sock)
        else:  # a failed request may leave replies behind: do not reuse
            sock.close()


def forget_host(netns: str | None) -> None:
    """Close pooled sockets of a node namespace (e.g. before deleting it)."""
    with _pool_lock:
        path = None if netns is None else netns_path(netns)
        keys = [k for k in _pool if (k[0] if k else None) == path]
        for key in keys:
            for sock in _pool.pop(key):
                sock.close()


@contextmanager
def pod_socket(netns: str) -> Iterator[Socket]:
    sock = socket_in(netns)
    try:
        yield sock
    finally:
        sock.close()
