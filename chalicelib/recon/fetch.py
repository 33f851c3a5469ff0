"""A day's statement fetched from its channel into the statement store: the first step of a run, and all the
sharded plan step needs of one (``functions/recon_shards.py``), which therefore does not load the matching,
repairs and reports of ``chalicelib/recon/run.py``."""

from __future__ import annotations

from datetime import date

from chalicelib.channels.registry import adapter
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import ChannelError
from chalicelib.recon import statement_store
from chalicelib.recon.tally import StatementInvalid


class StatementNotReady(Exception):
    """The channel has not published the statement yet (or could not be reached): retry the run later."""


def fetch(account: ChannelAccount, day: date, token: str) -> statement_store.StoredStatement:
    channel = account.config.channel
    # Each execution keeps its own file: a later download never replaces the one an earlier result rests on.
    key = statement_store.statement_key(channel, account.account_id, day.isoformat(), token)
    try:
        return statement_store.save(adapter(channel).fetch_statement(account, day.isoformat()), key)
    except ChannelError as exc:
        if exc.retryable:
            raise StatementNotReady(exc.message) from exc
        raise StatementInvalid(f"the channel refused the statement download: {exc.message}") from exc
