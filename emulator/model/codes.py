"""Every error the model raises, with the real code, HTTP status and wording.

Codes/messages marked "approx" in docs/emulator-model.md were not verified against the live API.
"""

from __future__ import annotations

from .errors import ApiError


def missing(param: str) -> ApiError:
    return ApiError("MissingParameter",
                    f'The input parameter "{param}" that is mandatory for processing this '
                    "request is not supplied.", 400)


def invalid(param: str, why: str = "") -> ApiError:
    extra = f" ({why})" if why else ""
    return ApiError("InvalidParameter", f'The specified parameter "{param}" is not valid.{extra}',
                    400)


def ip_not_enough(vswitch_id: str) -> ApiError:
    return ApiError("InvalidVSwitchId.IpNotEnough",
                    f'The specified VSwitch "{vswitch_id}" has not enough IpAddress.', 403)


def ip_quota(eni_id: str, limit: int) -> ApiError:
    """The per-ENI address limit (AssignPrivateIpAddresses; the API reference's code)."""
    return ApiError("InvalidOperation.Ipv4CountExceeded",
                    f"The number of private IPv4 addresses of {eni_id} exceeds the limit of its "
                    f"instance type ({limit}).", 403)


def eni_per_instance(instance_id: str, limit: int) -> ApiError:
    return ApiError("EniPerInstanceLimitExceeded",
                    f"The number of network interfaces attached to {instance_id} exceeds the "
                    f"limit of its instance type ({limit}).", 403)


def eni_state(eni_id: str, status: str) -> ApiError:
    return ApiError("InvalidOperation.InvalidEniState",
                    f"The operation is not allowed in the current state of {eni_id} ({status}).",
                    403)


def not_found(kind: str, rid: str) -> ApiError:
    param = {"InvalidEniId": "NetworkInterfaceId", "InvalidVSwitchId": "VSwitchId",
             "InvalidInstanceId": "InstanceId", "InvalidVpcId": "VpcId",
             "InvalidSecurityGroupId": "SecurityGroupId", "InvalidZoneId": "ZoneId",
             "InvalidInstanceType": "InstanceType", "InvalidRegionId": "RegionId"}.get(kind, kind)
    return ApiError(f"{kind}.NotFound", f'The specified {param} "{rid}" does not exist.', 404)


def resource_group_not_found() -> ApiError:
    """The API reference's code, status and message for a ResourceGroupId naming no group."""
    return ApiError("InvalidResourceGroup.NotFound",
                    "The ResourceGroup provided does not exist in our records.", 404)


def ip_unassigned(ip: str, eni_id: str) -> ApiError:
    return ApiError("InvalidIp.IpUnassigned",
                    f"The specified IP {ip} is not assigned on {eni_id}.", 403)


def instance_status(instance_id: str, status: str) -> ApiError:
    return ApiError("IncorrectInstanceStatus",
                    f"The current status of {instance_id} ({status}) does not support this "
                    "operation.", 403)


def ip_duplicated(ip: str) -> ApiError:
    return ApiError("InvalidPrivateIpAddress.Duplicated",
                    f"The specified private IP address {ip} is already in use.", 400)


def ip_not_in_vswitch(ip: str, vswitch_id: str) -> ApiError:
    return ApiError("InvalidPrivateIpAddress.Malformed",
                    f"The specified private IP address {ip} is not a usable address of "
                    f"{vswitch_id}.", 400)


def zone_mismatch(eni_id: str, instance_id: str) -> ApiError:
    return ApiError("InvalidOperation.AvailabilityZoneMismatch",
                    f"{eni_id} and {instance_id} are not in the same zone.", 403)


def vpc_mismatch(what: str, vpc_id: str) -> ApiError:
    return ApiError("InvalidParameter.VpcMismatch",
                    f"{what} does not belong to VPC {vpc_id}.", 400)


def cidr_overlapped(cidr: str) -> ApiError:
    return ApiError("InvalidCidrBlock.Overlapped",
                    f"Specified CIDR block {cidr} overlapped with other vswitch.", 400)


def cidr_invalid(cidr: str, why: str) -> ApiError:
    return ApiError("InvalidCidrBlock.Malformed", f"Specified CIDR block {cidr} is not valid: "
                    f"{why}.", 400)


def dependency(rid: str, what: str) -> ApiError:
    return ApiError("DependencyViolation", f"{rid} still has dependent resources: {what}.", 400)


def idempotent_mismatch(token: str) -> ApiError:
    return ApiError("IdempotentParameterMismatch",
                    f"The ClientToken {token!r} was used with different parameters.", 400)


def primary_eni(eni_id: str) -> ApiError:
    return ApiError("InvalidOperation.DetachPrimaryEniNotAllowed",
                    f"{eni_id} is a primary network interface.", 403)
