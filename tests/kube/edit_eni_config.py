"""An ``EDITOR`` for ``kubectl -n kube-system edit cm eni-config``: adds the vSwitch named by
``TERWAY_ADD_VSWITCH`` to every zone of ``eni_conf.vswitches``, as a person would in the editor.
Usage: EDITOR="python3 edit_eni_config.py" kubectl -n kube-system edit cm eni-config"""

from __future__ import annotations

import json
import os
import sys

import yaml


def main(path: str) -> None:
    with open(path) as f:
        doc = yaml.safe_load(f)
    conf = json.loads(doc["data"]["eni_conf"])
    for vsws in conf["vswitches"].values():
        vsws.append(os.environ["TERWAY_ADD_VSWITCH"])
    doc["data"]["eni_conf"] = json.dumps(conf, indent=2)
    with open(path, "w") as f:
        yaml.safe_dump(doc, f)


if __name__ == "__main__":
    main(sys.argv[-1])
