"""The one error type the emulated cloud raises, shaped like the real API's error body."""

from __future__ import annotations


class ApiError(Exception):
    """An Alibaba Cloud API error: ``Code``, ``Message`` and the HTTP status it travels with.

    The model raises it; the wire front ends turn it into
    ``{"RequestId","HostId","Code","Message"}`` with ``http_status``; the in-process cloud
    adapter maps it onto the plugin's error taxonomy.
    """

    def __init__(self, code: str, message: str, http_status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.request_id = ""   # set by the layer that answers the request (dispatch, server)

    def __repr__(self) -> str:
        return f"ApiError({self.code!r}, {self.message!r}, {self.http_status})"
