"""CMB direct connect: our SM2 key registered at the bank sandbox with the reserve account, which answers its
own public key, the symmetric (SM4) key it issues, the branch number and the business mode; stored as the
bank account ``rsv-cmb-1`` (chalicelib/banks/accounts.py) exactly as an operator would."""

from __future__ import annotations

from chalicelib.banks.accounts import BankAccountConfig, put_bank_account
from chalicelib.crypto.sm import sm2_generate_keypair
from infra.local.provision.http import post_json

RESERVE_ID = "rsv-cmb-1"
PORT = 8120
API_PATH = "/cdcserver/api/v2"


def provision(sandbox_url: str, *, reserve_id: str = RESERVE_ID, uid: str = "N002466694",
              account_no: str = "755915704510626", account_name: str = "支付枢纽备付金账户",
              opening_balance: str = "1000000.00") -> BankAccountConfig:
    """Generate our key, onboard at the sandbox with the account and its opening balance, store the config."""
    config, secrets_document = register(sandbox_url, reserve_id=reserve_id, uid=uid, account_no=account_no,
                                        account_name=account_name, opening_balance=opening_balance)
    put_bank_account(config, secrets_document)
    return config


def register(sandbox_url: str, *, reserve_id: str, uid: str, account_no: str, account_name: str,
             opening_balance: str) -> tuple[BankAccountConfig, dict[str, str]]:
    private_key, public_key = sm2_generate_keypair()
    onboarded = post_json(f"{sandbox_url}/_sandbox/users", {
        "uid": uid, "public_key": public_key,
        "accounts": [{"account_no": account_no, "name": account_name, "balance": opening_balance}],
    })
    config = BankAccountConfig(
        reserve_id=reserve_id, bank="cmb", api_base_url=sandbox_url + API_PATH, uid=uid, account_no=account_no,
        account_name=account_name, currencies=("CNY",), our_public_key=public_key,
        branch_no=onboarded["branch_no"], bus_mod=onboarded["bus_mod"],
    )
    return config, {"our_private_key": private_key, "sm4_key": onboarded["sm4_key"],
                    "bank_public_key": onboarded["bank_public_key"]}
