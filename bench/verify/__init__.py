"""Per-channel callback verification cases for bench/callback_verify.py.

Each module ``bench/verify/<channel>.py`` defines ``cases() -> list[tuple[str, Callable[[], object]]]``: each
callable verifies and parses one freshly signed callback through that channel's adapter, with the account and
the callback built once, outside the callable.
"""
