"""The protocol on terwayd's unix socket, which the daemon and its clients all depend on.

- ``cnicodec``: the CNI plugin's side, on C accelerators only (no ``json``, ``socket`` or
  ``typing`` at run time): the constants, error codes and classes, ``RpcError``, the reply
  checks and the blocking transport. The native front (terway/cni/shim.c) follows its defaults.
- ``messages``: the CNI methods as typed NamedTuples, their codec, ``RpcClient`` and the
  daemon's asyncio helpers (terway/daemon/server.py).
- ``admin``: terway-cli's ``Admin.*`` methods (request and reply shapes, codec, ``AdminClient``);
  the daemon answers them (terway/daemon/adminapi.py), terway-cli prints them (terway/cli/).

This file imports nothing: the plugin pays for it on every pod ADD/DEL (it is one of
terway.cni.launcher.HOT_MODULES, copied into the CNI bin dir's bundle).
"""
