"""The emulator stands alone (issue 11 item 7): importing it loads nothing from terway.

Nor from the simulator, a package of its own that consumes both. Only ``ModelCloud``, the
adapter to terway's ``CloudAPI`` (imported when first used), reaches into terway.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

from emulator.wire import logfmt as emulator_logfmt
from terway.daemon import logfmt as terway_logfmt

ROOT = Path(__file__).resolve().parents[2]
LOADS = """
import sys
import emulator, emulator.model, emulator.wire, emulator.inprocess
import emulator.actions, emulator.faults, emulator.world, emulator.server, emulator.cli
import emulator.wire.mock, emulator.wire.http, emulator.wire.gateway, emulator.wire.logfmt
from emulator import Emulator, mock_aliyun
emu = Emulator.create(seed=1)
emu.call("vpc", "CreateVpc", {"RegionId": "cn-hangzhou", "CidrBlock": "10.0.0.0/16"})
with mock_aliyun(emu):
    pass
loaded = sorted(m for m in sys.modules
                if m.split(".")[0] in ("terway", "simulator", "simpy", "matplotlib"))
assert not loaded, loaded
print("standalone")
"""


def test_importing_and_using_the_emulator_loads_nothing_from_terway() -> None:
    done = subprocess.run([sys.executable, "-c", LOADS], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "standalone"


def test_model_cloud_still_adapts_to_terway_when_used() -> None:
    from emulator.inprocess import ModelCloud
    from emulator.model import Cloud
    from terway.cloud.api import Eni
    from terway.cloud.errors import CloudError

    cloud = Cloud(seed=2)
    vpc = cloud.create_vpc("10.0.0.0/16").vpc_id
    vsw = cloud.create_vswitch(vpc, "cn-hangzhou-h", "10.0.0.0/24").vswitch_id
    sg = cloud.create_security_group(vpc).security_group_id
    api = ModelCloud(cloud)
    eni = api.create_network_interface(vswitch_id=vsw, security_group_ids=[sg],
                                       secondary_ip_count=1, tags={}, client_token="")
    assert isinstance(eni, Eni)
    try:
        api.delete_network_interface("eni-nope")
    except CloudError as err:
        assert err.code == "InvalidEniId.NotFound"
    else:
        raise AssertionError("no CloudError")


def _line(formatter: logging.Formatter, msg: str, fields: dict[str, object]) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, msg, None, None)
    record.created = 1_700_000_000.0
    record.fields = fields
    handler.emit(record)
    return stream.getvalue()


def test_the_emulators_logfmt_writes_the_projects_lines() -> None:
    cases: list[tuple[str, dict[str, object]]] = [
        ("api call", {"action": "AssignPrivateIpAddresses", "status": 403, "code": None}),
        ('quote "me"\nnext line\x1b', {"secret_key": "s3cret", "path": "/a b", "empty": ""}),
        ("plain", {}),
    ]
    for msg, fields in cases:
        assert _line(emulator_logfmt.LogfmtFormatter(), msg, fields) == _line(
            terway_logfmt.LogfmtFormatter(), msg, fields)
