"""THE table of errors the emulated cloud answers: code, HTTP status, message, source.

Every refusal the model, the action layer and the fault engine make comes from a row here, so
the codes clients branch on (upstream Terway retries on ``Throttling``, treats
``InvalidIp.IpUnassigned`` as done, moves to the next vSwitch on
``QuotaExceeded.PrivateIpAddress``…) are those of the real API. ``source`` says where a row was
read: an ECS/VPC API reference error table (``ECS API: <action>``, ``ECS common errors``) and/or
upstream's ``pkg/aliyun/client/errors/errors.go`` (``upstream``); ``ours`` marks what no public
material gave (then the code and status are still the reference's unless the source says
otherwise). docs/emulator.md carries this table (``markdown_table()``; a test keeps them equal:
``python -m emulator.model.codes`` prints it). The signature checks' refusals live with the
signature code (docs/emulator.md, "Signature checks").
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from .errors import ApiError


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row: calling it with the template's fields gives the ``ApiError`` to raise."""

    code: str
    status: int
    template: str       # str.format fields in braces; the API's own text where the source has it
    when: str           # the situation that answers it (for the docs)
    source: str

    def __call__(self, **fields: object) -> ApiError:
        return ApiError(self.code, self.template.format(**fields), self.status)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.template) if f)


_ECS = "ECS API: "
_UP = "upstream errors.go"

MISSING_PARAMETER = ErrorCode(
    "MissingParameter", 400,
    'The input parameter "{param}" that is mandatory for processing this request is not '
    "supplied.", "a required parameter (RegionId included) is absent", "ECS common errors")
INVALID_PARAMETER = ErrorCode(
    "InvalidParameter", 400, 'The specified parameter "{param}" is not valid.{detail}',
    "a value out of range or of the wrong form (the detail is ours)", "ECS common errors")
UNSUPPORTED_PARAMETER = ErrorCode(
    "UnsupportedParameter", 400, 'The parameter "{param}" is not supported by the emulator.',
    "a documented filter the emulator does not evaluate (never silently ignored)",
    _ECS + "AttachNetworkInterface (code); message ours")
REGION_NOT_FOUND = ErrorCode(
    "InvalidRegionId.NotFound", 404, "The specified RegionId does not exist.",
    "RegionId names no region", "ECS common errors")
ENI_NOT_FOUND = ErrorCode(
    "InvalidEniId.NotFound", 404, "The specified EniId is not found.",
    "no such ENI in the request's region", _ECS + "UnassignPrivateIpAddresses; " + _UP)
VSWITCH_NOT_FOUND = ErrorCode(
    "InvalidVSwitchId.NotFound", 404, "The specified VSwitchId is not found.",
    "no such vSwitch in the request's region", _ECS + "UnassignPrivateIpAddresses")
INSTANCE_NOT_FOUND = ErrorCode(
    "InvalidInstanceId.NotFound", 404, "The specified InstanceId does not exist.",
    "no such instance in the request's region", "ECS common errors")
ECS_NOT_FOUND = ErrorCode(
    "InvalidEcsId.NotFound", 404, "The specified EcsId is not found.",
    "Attach/DetachNetworkInterface naming an unknown instance",
    _ECS + "AttachNetworkInterface, DetachNetworkInterface; " + _UP)
SG_NOT_FOUND = ErrorCode(
    "InvalidSecurityGroupId.NotFound", 404, "The specified SecurityGroupId does not exist.",
    "no such security group in the request's region", "ECS common errors")
VPC_NOT_FOUND = ErrorCode(
    "InvalidVpcId.NotFound", 404, "Specified VPC does not exist.",
    "no such VPC in the request's region", "VPC API: CreateVSwitch")
ZONE_NOT_FOUND = ErrorCode(
    "InvalidZoneId.NotFound", 404, "Specified zone does not exist.",
    "a zone not of the VPC's region", "VPC API: CreateVSwitch")
INSTANCE_TYPE_NOT_FOUND = ErrorCode(
    "InvalidInstanceType.NotFound", 404, 'The specified InstanceType "{name}" does not exist.',
    "RunInstances with a type not in the catalog", "ours")
RESOURCE_GROUP_NOT_FOUND = ErrorCode(
    "InvalidResourceGroup.NotFound", 404,
    "The ResourceGroup provided does not exist in our records.",
    "a ResourceGroupId that cannot name a group", _ECS + "CreateNetworkInterface")
IP_NOT_ENOUGH = ErrorCode(
    "InvalidVSwitchId.IpNotEnough", 403,
    'The specified VSwitch "{vswitch_id}" has not enough IpAddress.',
    "CreateNetworkInterface/AssignPrivateIpAddresses: the vSwitch has too few free addresses",
    _ECS + "AssignPrivateIpAddresses, CreateNetworkInterface; " + _UP)
VSWITCH_EXHAUSTED = ErrorCode(
    "QuotaExceeded.PrivateIpAddress", 400, "Don't have enough private IPs in this switch.",
    "RunInstances: the vSwitch has too few free addresses", _ECS + "RunInstances; " + _UP)
IPV4_COUNT_EXCEEDED = ErrorCode(
    "InvalidOperation.Ipv4CountExceeded", 403,
    "The number of private IPv4 addresses of {eni_id} exceeds the limit ({limit}).",
    "the per-ENI address limit (instance type's, or 50 unattached)",
    _ECS + "AssignPrivateIpAddresses (message ours); " + _UP)
ENI_PER_INSTANCE = ErrorCode(
    "EniPerInstanceLimitExceeded", 403,
    "The number of ENI exceeds the limit for the type of instance you are trying to launch.",
    "attaching beyond the type's EniQuantity", _ECS + "AttachNetworkInterface; " + _UP)
ENI_STATE = ErrorCode(
    "InvalidOperation.InvalidEniState", 400,
    'The operation is not allowed in the current ENI state. Expecting status is "{expected}" '
    'while current status is "{status}".',
    "the ENI is not in the state the action needs", _ECS + "AssignIpv6Addresses; " + _UP)
ENI_TYPE = ErrorCode(
    "InvalidOperation.InvalidEniType", 403, "The operation is not allowed in the current ENI type.",
    "DeleteNetworkInterface on a primary ENI", _ECS + "AttachNetworkInterface")
DETACH_PRIMARY = ErrorCode(
    "InvalidOperation.DetachPrimaryEniNotAllowed", 400,
    "Detaching primary ENI from ECS instance is not allowed.",
    "DetachNetworkInterface on a primary ENI", _ECS + "DetachNetworkInterface")
ECS_STATE = ErrorCode(
    "InvalidOperation.InvalidEcsState", 400,
    "The operation is not allowed in the current ECS state.",
    "the instance is not Running", _ECS + "AttachNetworkInterface")
IP_INVALID = ErrorCode(
    "InvalidVSwitchId.IpInvalid", 403,
    "The specified IpAddress is not valid in VSwitch CIDR block.",
    "a named address that is not a usable address of the ENI's vSwitch",
    _ECS + "UnassignPrivateIpAddresses, AssignPrivateIpAddresses")
IP_REPEATED = ErrorCode(
    "InvalidIp.IpRepeated", 403, 'The specified ipAddress "{ip}" is(are) repeated.',
    "the same address twice in one request", _ECS + "AssignPrivateIpAddresses, AssignIpv6Addresses")
IP_DUPLICATED = ErrorCode(
    "InvalidPrivateIpAddress.Duplicated", 400, "Specified private IP address is duplicated.",
    "a named address already in use", _ECS + "AssignPrivateIpAddresses, RunInstances")
IP_NOT_IN_VSWITCH = ErrorCode(
    "InvalidPrivateIpAddress", 400,
    "Specified private IP address is not in the CIDR block of virtual switch.",
    "RunInstances: PrivateIpAddress not a usable address of the vSwitch", _ECS + "RunInstances")
IP_UNASSIGNED = ErrorCode(
    "InvalidIp.IpUnassigned", 403, "The specified IP is not assigned on this ENI.",
    "unassigning an address the ENI does not hold as a secondary (its primary included)",
    _ECS + "UnassignPrivateIpAddresses; " + _UP)
INSTANCE_STATUS = ErrorCode(
    "IncorrectInstanceStatus", 403, "The current status of the resource does not support this "
    "operation.", "DeleteInstance(s) of a Running instance without Force", _ECS + "DeleteInstance")
ZONE_MISMATCH = ErrorCode(
    "InvalidOperation.AvailabilityZoneMismatch", 403,
    "The VPC VSwitch of the specified ENI and ECS instance are not in the same availability zone.",
    "attaching across zones", _ECS + "CreateNetworkInterface")
VPC_MISMATCH = ErrorCode(
    "InvalidOperation.VpcMismatch", 403,
    "The VPC of the specified ENI and security group are not in the same VPC.",
    "attaching across VPCs; a security group of another VPC", _ECS + "AttachNetworkInterface")
CIDR_MALFORMED = ErrorCode(
    "InvalidCidrBlock.Malformed", 400, "Specified CIDR block is not valid.",
    "not a CIDR, or a prefix outside /8-/28 (VPC), /16-/29 (vSwitch)", "VPC API: CreateVSwitch")
CIDR_NOT_IN_VPC = ErrorCode(
    "InvalidParameter", 400, "Specified CIDR block is not valid in VPC.",
    "CreateVSwitch outside the VPC's CIDR", "VPC API: CreateVSwitch")
CIDR_OVERLAPPED = ErrorCode(
    "InvalidCidrBlock.Overlapped", 400, "Specified CIDR block overlapped with other subnets.",
    "CreateVSwitch overlapping another vSwitch", "VPC API: CreateVSwitch")
DEPENDENCY = ErrorCode(
    "DependencyViolation", 400, "Specified object has dependent resources.",
    "DeleteVSwitch while ENIs use it", "VPC API: DeleteVSwitch (as real answers quote it)")
DEPENDENCY_VSWITCH = ErrorCode(
    "DependencyViolation.VSwitch", 400, "Specified object has dependent resources",
    "DeleteVpc while vSwitches exist", "VPC API: DeleteVpc")
DEPENDENCY_SECURITY_GROUP = ErrorCode(
    "DependencyViolation.SecurityGroup", 400, "Specified object has dependent resources",
    "DeleteVpc while security groups exist", "VPC API: DeleteVpc")
IDEMPOTENT_MISMATCH = ErrorCode(
    "IdempotentParameterMismatch", 400,
    "Request uses a client token in a previous request but is not identical to that request.",
    "a ClientToken reused with other parameters", _ECS + "RunInstances")
ACTION_NOT_FOUND = ErrorCode(
    "InvalidAction.NotFound", 404, "Specified api is not found, please check your url and method.",
    "an action the product does not have", "ECS/VPC answers (SDK issue threads)")
THROTTLING = ErrorCode(
    "Throttling", 400, "Request was denied due to request throttling.",
    "an injected throttle/error with this code (upstream retries on it)",
    _ECS + "DescribeInstanceMonitorData; " + _UP)
THROTTLING_USER = ErrorCode(
    "Throttling.User", 400, "Request was denied due to user flow control.",
    "a throttle fault rule's empty bucket (the default code)", "ECS/VPC answers (flow control)")
FORBIDDEN_RAM = ErrorCode(
    "Forbidden.RAM", 403,
    "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
    "an injected fault with this code", "ECS common errors; " + _UP)
OPERATION_CONFLICT = ErrorCode(
    "Operation.Conflict", 403, "ecs task is conflicted.", "an injected fault with this code",
    _ECS + "UnassignPrivateIpAddresses; " + _UP)
INTERNAL_ERROR = ErrorCode(
    "InternalError", 500,
    "The request processing has failed due to some unknown error, exception or failure.",
    "an injected fault with this code", "ECS common errors; " + _UP)
SERVICE_UNAVAILABLE = ErrorCode(
    "ServiceUnavailable", 503, "The request has failed due to a temporary failure of the server.",
    "an injected fault with this code", "ECS common errors")

TABLE: tuple[ErrorCode, ...] = tuple(v for v in dict(globals()).values()
                                     if isinstance(v, ErrorCode))


def by_code(code: str) -> ErrorCode | None:
    """The first row answering ``code`` (injected faults take their status and text from it)."""
    return next((row for row in TABLE if row.code == code), None)


def markdown_table() -> str:
    """The table as docs/emulator.md carries it (one line per row, in table order)."""
    lines = ["| code | HTTP | message | when | source |", "|---|---|---|---|---|"]
    lines += [f"| `{r.code}` | {r.status} | {r.template} | {r.when} | {r.source} |"
              for r in TABLE]
    return "\n".join(lines)


def missing(param: str) -> ApiError:
    return MISSING_PARAMETER(param=param)


def invalid(param: str, why: str = "") -> ApiError:
    return INVALID_PARAMETER(param=param, detail=f" ({why})" if why else "")


_NOT_FOUND: dict[str, ErrorCode] = {
    "InvalidEniId": ENI_NOT_FOUND, "InvalidVSwitchId": VSWITCH_NOT_FOUND,
    "InvalidInstanceId": INSTANCE_NOT_FOUND, "InvalidEcsId": ECS_NOT_FOUND,
    "InvalidVpcId": VPC_NOT_FOUND, "InvalidSecurityGroupId": SG_NOT_FOUND,
    "InvalidZoneId": ZONE_NOT_FOUND, "InvalidRegionId": REGION_NOT_FOUND,
}


def not_found(kind: str, rid: str = "") -> ApiError:
    """``<kind>.NotFound`` for ``rid`` (the real messages do not repeat the id)."""
    if kind == "InvalidInstanceType":
        return INSTANCE_TYPE_NOT_FOUND(name=rid)
    return _NOT_FOUND[kind]()


def resource_group_not_found() -> ApiError:
    """The API reference's code, status and message for a ResourceGroupId naming no group."""
    return RESOURCE_GROUP_NOT_FOUND()


def ip_not_enough(vswitch_id: str) -> ApiError:
    return IP_NOT_ENOUGH(vswitch_id=vswitch_id)


def ip_quota(eni_id: str, limit: int) -> ApiError:
    """The per-ENI address limit (AssignPrivateIpAddresses; the API reference's code)."""
    return IPV4_COUNT_EXCEEDED(eni_id=eni_id, limit=limit)


def eni_state(expected: str, status: str) -> ApiError:
    return ENI_STATE(expected=expected, status=status)


def injected(code: str, message: str | None, status: int | None) -> ApiError:
    """A fault rule's error: what is not given comes from the table (unknown codes: 400, or
    500/503 for InternalError/ServiceUnavailable look-alikes, and a message naming the fault)."""
    row = by_code(code)
    if status is None:
        status = row.status if row is not None else _guess_status(code)
    if message is None:
        message = row.template if row is not None and not row.fields else (
            f"Injected fault: {code}.")
    return ApiError(code, message, status)


def _guess_status(code: str) -> int:
    if code.startswith("ServiceUnavailable"):
        return 503
    if code.startswith(("InternalError", "UnknownError")):
        return 500
    return 400


if __name__ == "__main__":
    print(markdown_table())
