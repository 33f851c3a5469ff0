"""Alipay gateway errors: ``code`` (40004 business failure, 40002 bad parameter, 20000 unavailable...) plus the
``sub_code`` a client acts on. Rendered into the signed ``<method>_response`` like any answer."""

from __future__ import annotations


class AlipayError(Exception):
    code = "40004"
    msg = "Business Failed"

    def __init__(self, sub_code: str, sub_msg: str) -> None:
        super().__init__(f"{sub_code}: {sub_msg}")
        self.sub_code, self.sub_msg = sub_code, sub_msg

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "msg": self.msg, "sub_code": self.sub_code, "sub_msg": self.sub_msg}


class BusinessError(AlipayError):
    """40004: the operation was refused (trade not found, wrong status, refund over the limit...)."""


class InvalidParameter(AlipayError):
    code = "40002"
    msg = "Invalid Arguments"


class MissingParameter(AlipayError):
    code = "40001"
    msg = "Missing Required Arguments"


class ServiceUnavailable(AlipayError):
    code = "20000"
    msg = "Service Currently Unavailable"


def trade_not_exist() -> BusinessError:
    return BusinessError("ACQ.TRADE_NOT_EXIST", "交易不存在")


def trade_status_error(status: str) -> BusinessError:
    return BusinessError("ACQ.TRADE_STATUS_ERROR", f"交易状态不合法 ({status})")
