"""CMB's payment states (``reqSts``, ``rtnFlg`` of BB1PAYQR/BB1PAYOP) mapped onto ``TransferState``.

A payment is final only when ``reqSts`` is FIN; then ``rtnFlg`` says how it ended. Every other request state
(awaiting approval, approved, at the bank, suspect, receiving, manual review) is still moving. Anything this
table does not know is PROCESSING: a new code must never read as money having moved, nor as a failure that
would release funds still on their way.
"""

from __future__ import annotations

from chalicelib.banks.base import TransferState

# reqSts (请求状态)
REQUEST_STATES = {
    "AUT": "等待审批", "NTE": "终审完毕", "BNK": "银行处理中", "WRF": "可疑", "FIN": "完成", "OPR": "数据接收中",
    "APW": "银行人工审批",
}
# rtnFlg (业务处理结果) once reqSts is FIN
_FINAL_RESULTS: dict[str, TransferState] = {
    "S": TransferState.SUCCEEDED,  # 成功
    "F": TransferState.FAILED,  # 失败: refused before the money left
    "B": TransferState.RETURNED,  # 退票: the payee's bank sent it back
    "R": TransferState.FAILED,  # 否决: refused in our own approval, nothing left
    "D": TransferState.FAILED,  # 过期: approval expired, nothing left
    "C": TransferState.FAILED,  # 撤消: cancelled, nothing left
    "U": TransferState.PROCESSING,  # 挂账: held by the bank, not final
}


def transfer_state(req_sts: str, rtn_flg: str) -> TransferState:
    if req_sts != "FIN":
        return TransferState.PROCESSING
    return _FINAL_RESULTS.get(rtn_flg, TransferState.PROCESSING)
