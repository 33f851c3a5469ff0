"""Shared by the routing tests: WeChat accounts of their own on the session's sandbox, dedicated to one merchant
(so no other test's payments are routed to them), and a fake clock for caches and breakers."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from chalicelib.storage import config_repo
from infra.local.provision.wechatpay import provision
from payhub_cli.main import main as payhub


def wechat_accounts(stack: Any, merchant_id: str, *names: str) -> list[str]:
    """One WeChat account per name (a merchant number of its own at the sandbox), dedicated to ``merchant_id``."""
    made = []
    for name in names:
        account_id = f"{name}-{secrets.token_hex(3)}"
        provision(stack.sandbox_url, account_id=account_id, mchid=str(1_800_000_000 + secrets.randbelow(99_999_999)),
                  appid=f"wx{secrets.token_hex(8)}", merchant_ids=(merchant_id,))
        made.append(account_id)
    return made


def put_rules(tmp_path: Path, merchant_id: str, document: dict[str, Any], capsys: Any) -> dict[str, Any]:
    path = tmp_path / f"rules-{secrets.token_hex(3)}.json"
    path.write_text(json.dumps(document))
    capsys.readouterr()
    assert payhub(["route", "put", "--merchant", merchant_id, str(path)]) == 0, capsys.readouterr().err
    answer: dict[str, Any] = json.loads(capsys.readouterr().out)
    return answer


def account_of(payment: dict[str, Any]) -> str:
    from chalicelib.storage import state_repo

    attempt = state_repo.get_attempt(payment["attempt_id"])
    assert attempt is not None
    return attempt.account_id


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def forget_config() -> None:
    config_repo.invalidate_cache()
