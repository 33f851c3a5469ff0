"""A Lambda execution environment for one function of the rehearsal, started as ``python -I -S runtime.py CONFIG``.

What Lambda gives a function and nothing else: the function's package at the task root and its layer under
``/opt/python`` on ``sys.path`` (no site-packages: ``-S``; no PYTHON* variables, no user site, no script
directory: ``-I``), the environment the parent built from the template, and invocations one at a time.

Two things are added around the function, neither visible in its environment:

* the network it would have: names of the outside world (the hub's custom domain, a merchant's endpoint) resolve
  to public addresses, and connections to those addresses land on the rehearsal's TLS servers on 127.0.0.1,
  whose certificates chain to the rehearsal's CA (trusted as the runtime trusts public CAs). Any other address
  that is not loopback is refused, so nothing ever leaves the machine;
* a recorder of every AWS API call (botocore's ``_make_api_call``), one JSON line per call with what IAM needs
  to decide it: service, operation, the names of what it touched, and the error code if AWS refused it.

This file imports only the standard library before ``sys.path`` is set: it must not bring the test's
virtualenv into the function's process. The sandbox runner loads ``install_network`` from it too.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import ssl
import sys
import time
import traceback
from typing import Any


def install_network(hosts: dict[str, list[Any]], ca_file: str) -> None:
    """``hosts``: name -> [public address, loopback port]. Installs DNS, routing and CA trust for them."""
    by_name = {name.lower(): (address, port) for name, (address, port) in hosts.items()}
    routes = {(address, 443): port for address, port in by_name.values()}
    original_getaddrinfo = socket.getaddrinfo
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.lower().rstrip(".") in by_name:
            address = by_name[name.lower().rstrip(".")][0]
            return original_getaddrinfo(address, port, *args, **kwargs)
        if name in (None, "localhost") or _is_loopback(name) or _routed(name, routes):
            return original_getaddrinfo(host, port, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"{name}: not a name of the rehearsal's network")

    def route(address: Any) -> Any:
        if not isinstance(address, tuple) or len(address) < 2:
            return address
        host, port = str(address[0]), int(address[1])
        if (host, port) in routes:
            return ("127.0.0.1", routes[(host, port)])
        if _is_loopback(host):
            return address
        raise ConnectionRefusedError(f"{host}:{port} is outside the rehearsal's network")

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            address = route(address)
            if self.family == socket.AF_INET6 and address[0] == "127.0.0.1":
                address = ("::ffff:127.0.0.1", address[1], 0, 0)
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            address = route(address)
        return int(original_connect_ex(self, address))

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    original_load_default_certs = ssl.SSLContext.load_default_certs

    def load_default_certs(self: ssl.SSLContext, purpose: Any = ssl.Purpose.SERVER_AUTH) -> None:
        original_load_default_certs(self, purpose)
        self.load_verify_locations(cafile=ca_file)

    ssl.SSLContext.load_default_certs = load_default_certs  # type: ignore[method-assign]


def _is_loopback(host: Any) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _routed(host: Any, routes: dict[tuple[str, int], int]) -> bool:
    return any(host == address for address, _ in routes)


# --- the AWS call recorder ------------------------------------------------------------------------------------

_NAMES = ("TableName", "IndexName", "QueueUrl", "QueueName", "SecretId", "Name", "KeyId", "Bucket", "Key",
          "Namespace", "UploadId", "Prefix")


def _describe(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """The names in a request that IAM decides on (never the values written: items, secrets, bodies)."""
    names = {key: params[key] for key in _NAMES if isinstance(params.get(key), str)}
    if operation in ("TransactWriteItems", "TransactGetItems"):
        names["items"] = [[kind, body["TableName"]] for item in params.get("TransactItems", [])
                          for kind, body in item.items()]
    if operation in ("BatchWriteItem", "BatchGetItem"):
        names["tables"] = sorted(params.get("RequestItems", {}))
    if operation == "SendMessageBatch":
        names["entries"] = len(params.get("Entries", []))
    return names


def install_recorder(log_path: str) -> None:
    import botocore.client
    from botocore.exceptions import ClientError

    original = botocore.client.BaseClient._make_api_call

    def recorded(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        entry: dict[str, Any] = {"service": service, "operation": operation_name,
                                 "region": self.meta.region_name,
                                 "names": _describe(service, operation_name, api_params)}
        try:
            response = original(self, operation_name, api_params)
        except ClientError as exc:
            entry["error"] = exc.response.get("Error", {}).get("Code", "ClientError")
            _append(log_path, entry)
            raise
        if isinstance(response, dict) and isinstance(response.get("ARN"), str):
            entry["arn"] = response["ARN"]  # Secrets Manager answers with the secret's full ARN
        _append(log_path, entry)
        return response

    botocore.client.BaseClient._make_api_call = recorded  # type: ignore[method-assign]


def _append(path: str, entry: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


# --- the invocation loop ----------------------------------------------------------------------------------------


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, arn: str, memory_mb: int, timeout_s: int, request_id: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "rehearsal"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        config = json.load(file)
    install_network(config["hosts"], config["ca_file"])
    # As Lambda's bootstrap: the task root, then the layer's python/ directory, then the runtime's stdlib.
    sys.path[:0] = [config["task_root"], os.path.join(config["opt"], "python")]
    install_recorder(config["calls_log"])
    requests_in = os.fdopen(int(sys.argv[2]), "r", encoding="utf-8")
    answers_out = os.fdopen(int(sys.argv[3]), "w", encoding="utf-8")
    module_name, attribute = config["handler"].rsplit(".", 1)
    started = time.monotonic()
    try:
        import importlib

        handler = getattr(importlib.import_module(module_name), attribute)
    except BaseException as exc:  # noqa: BLE001 - an init error is the function's answer, as Lambda reports it
        traceback.print_exc()
        answers_out.write(json.dumps({"init_error": f"{type(exc).__name__}: {exc}"}) + "\n")
        answers_out.flush()
        return
    answers_out.write(json.dumps({"ready": True, "init_ms": int((time.monotonic() - started) * 1000)}) + "\n")
    answers_out.flush()
    for line in requests_in:
        invocation = json.loads(line)
        context = LambdaContext(config["function_name"], config["function_arn"], config["memory_mb"],
                                config["timeout_s"], invocation["request_id"])
        try:
            answer = {"result": handler(invocation["event"], context)}
        except Exception as exc:  # noqa: BLE001 - as Lambda: the invocation fails, the environment stays
            traceback.print_exc()
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.flush()
        sys.stderr.flush()
        answers_out.write(json.dumps(answer, default=str) + "\n")
        answers_out.flush()


if __name__ == "__main__":
    main()
