"""The cloud a simulated node talks to: ``emulator.inprocess.ModelCloud`` over the model.

Faults are not given to ModelCloud: the simulator decides them itself (``Run.latency``) at the
moment a call is sent, so an injected latency delays the call in simpy time rather than being
reported after the fact.
"""

from __future__ import annotations

from typing import Any

from emulator.inprocess import ModelCloud
from emulator.model.cloud import Cloud
from emulator.model.errors import ApiError
from terway.cloud.api import CloudAPI
from terway.cloud.errors import CloudError


def to_cloud_error(model: Any, err: ApiError) -> CloudError:
    """An injected model error as the plugin sees it (the model's request id, the status)."""
    return CloudError(err.code, err.message, request_id=model.new_request_id(),
                      http_status=err.http_status)


def make_cloud_api(model: Cloud) -> CloudAPI:
    return ModelCloud(model)
