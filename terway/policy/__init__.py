"""NetworkPolicy on the node: the DaemonSet's ``policy`` container (``terwayd policy``).

Enforcement is Calico Felix's, as in upstream Terway: Felix, with the Kubernetes datastore,
turns NetworkPolicies, pods and namespaces into iptables rules on the ``cali*`` host veths our
veth datapath creates (``terway.datapath.naming``). This package only prepares and starts it
(``felix``: its settings; ``datastore``: the two Calico objects it waits for), idles when
``disable_network_policy`` is "true" (``idle``), and then removes what an earlier Felix left
(``cleanup``). See docs/policy.md.
"""
