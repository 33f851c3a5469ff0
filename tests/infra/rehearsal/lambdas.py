"""What AWS does around the functions, done locally from the template: one fresh process per function (an
execution environment), API Gateway behind the custom domain, the SQS event source mappings, the schedules."""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.infra.rehearsal.cfn import ACCOUNT, Function, Template

RUNTIME = Path(__file__).with_name("runtime.py")
INVOKE_TIMEOUT_S = 120
# Set by Lambda itself in every function, not by the template (the "reserved" variables of the runtime).
LAMBDA_RESERVED = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                   "AWS_SESSION_TOKEN", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                   "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_EXECUTION_ENV",
                   "LAMBDA_TASK_ROOT", "_HANDLER", "TZ", "LANG", "PATH")


def lambda_environment(function: Function, region: str, endpoint: str, log_group: str) -> dict[str, str]:
    """The template's variables, Lambda's reserved ones, and the local AWS endpoint. Nothing else."""
    return {
        **function.environment,
        "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
        # The role's session credentials on Lambda; moto accepts any.
        "AWS_ACCESS_KEY_ID": "ASIAREHEARSAL", "AWS_SECRET_ACCESS_KEY": "rehearsal", "AWS_SESSION_TOKEN": "rehearsal",
        "AWS_LAMBDA_FUNCTION_NAME": function.name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME": log_group,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11", "LAMBDA_TASK_ROOT": "/var/task", "_HANDLER": function.handler,
        "TZ": ":UTC", "LANG": "en_US.UTF-8", "PATH": "/usr/local/bin:/usr/bin:/bin",
        "AWS_ENDPOINT_URL": endpoint,
    }


class FunctionProcess:
    """One execution environment: started cold, then invoked one event at a time, as Lambda does."""

    def __init__(self, function: Function, environment: dict[str, str], task_root: Path, opt: Path,
                 hosts: dict[str, list[Any]], ca_file: Path, workdir: Path, arn: str) -> None:
        self.function = function
        self.environment = environment
        self.task_root, self.opt = task_root, opt
        self.calls_log = workdir / f"{function.logical_id}.calls.jsonl"
        self.output = workdir / f"{function.logical_id}.log"
        self.invocations = 0
        config = {"task_root": str(task_root), "opt": str(opt), "handler": function.handler, "hosts": hosts,
                  "ca_file": str(ca_file), "calls_log": str(self.calls_log), "function_name": function.name,
                  "function_arn": arn, "memory_mb": function.memory_mb, "timeout_s": function.timeout_s}
        config_path = workdir / f"{function.logical_id}.json"
        config_path.write_text(json.dumps(config))
        requests_r, requests_w = os.pipe()
        answers_r, answers_w = os.pipe()
        with open(self.output, "w") as output:
            self._process = subprocess.Popen(  # noqa: S603 - our interpreter, our bootstrap
                [sys.executable, "-I", "-S", str(RUNTIME), str(config_path), str(requests_r), str(answers_w)],
                env=environment, cwd=task_root, pass_fds=(requests_r, answers_w), stdout=output,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        os.close(requests_r)
        os.close(answers_w)
        self._requests = os.fdopen(requests_w, "w", encoding="utf-8")
        self._answers = os.fdopen(answers_r, "r", encoding="utf-8")
        self._lock = threading.Lock()
        self.init: dict[str, Any] | None = None

    def _read(self) -> dict[str, Any]:
        ready, _, _ = select.select([self._answers], [], [], INVOKE_TIMEOUT_S)
        if not ready:
            raise TimeoutError(f"{self.function.logical_id} did not answer in {INVOKE_TIMEOUT_S} s; see {self.output}")
        line = self._answers.readline()
        if not line:
            raise RuntimeError(f"{self.function.logical_id} exited: {self.output.read_text()[-3000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def wait_ready(self) -> dict[str, Any]:
        if self.init is None:
            self.init = self._read()
        return self.init

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            init = self.wait_ready()
            if "init_error" in init:
                raise RuntimeError(f"{self.function.logical_id} failed to start: {init['init_error']}")
            self._requests.write(json.dumps({"event": event, "request_id": str(uuid.uuid4())}) + "\n")
            self._requests.flush()
            answer = self._read()
            self.invocations += 1
        if "error" in answer:
            raise InvocationError(f"{self.function.logical_id}: {answer['error']}")
        return answer["result"]

    def calls(self) -> list[dict[str, Any]]:
        if not self.calls_log.exists():
            return []
        return [json.loads(line) for line in self.calls_log.read_text().splitlines()]

    def stop(self) -> None:
        self._requests.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._answers.close()


class InvocationError(Exception):
    """The function raised: Lambda reports the invocation as failed."""


class ApiGateway:
    """The REST API behind its custom domain: each request becomes the proxy event of the route's function."""

    def __init__(self, template: Template, processes: dict[str, FunctionProcess], host: str) -> None:
        self._routes = [(method, path, re.compile("^" + re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)",
                                                                  re.escape(path)) + "$"), function)
                        for method, path, function in template.routes()]
        self._binary = template.binary_media_types()
        self._processes = processes
        self._host = host

    def respond(self, method: str, target: str, headers: dict[str, list[str]],
                body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        for route_method, template_path, pattern, function in self._routes:
            match = pattern.match(parts.path)
            if match and route_method == method:
                event = self._event(method, parts.path, parts.query, template_path, match.groupdict(), headers, body)
                try:
                    answer = self._processes[function].invoke(event)
                except InvocationError:
                    return 502, {"content-type": "application/json"}, b'{"message": "Internal server error"}'
                return self._response(answer)
        return 403, {"content-type": "application/json"}, b'{"message":"Missing Authentication Token"}'

    def _event(self, method: str, path: str, query: str, template_path: str, params: dict[str, str],
               headers: dict[str, list[str]], body: bytes) -> dict[str, Any]:
        content_type = next((v[-1] for k, v in headers.items() if k.lower() == "content-type"), "")
        binary = any(fnmatch.fnmatch(content_type.split(";")[0].strip(), t.replace("~1", "/"))
                     for t in self._binary)
        multi_query = parse_qs(query, keep_blank_values=True) or None
        return {
            "resource": template_path, "path": path, "httpMethod": method,
            "headers": {k: v[-1] for k, v in headers.items()}, "multiValueHeaders": headers,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} if multi_query else None,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": params or None, "stageVariables": None,
            "requestContext": {"resourcePath": template_path, "httpMethod": method, "path": path, "stage": "api",
                               "requestId": str(uuid.uuid4()), "domainName": self._host, "accountId": ACCOUNT,
                               "apiId": "rehearsalapi", "protocol": "HTTP/1.1",
                               "requestTimeEpoch": int(time.time() * 1000),
                               "identity": {"sourceIp": "192.0.32.200", "userAgent": None}},
            "body": (base64.b64encode(body).decode() if binary else body.decode()) if body else None,
            "isBase64Encoded": bool(body) and binary,
        }

    @staticmethod
    def _response(answer: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        headers = dict(answer.get("headers") or {})
        for key, values in (answer.get("multiValueHeaders") or {}).items():
            headers[key] = ", ".join(values)
        raw = answer.get("body") or ""
        body = base64.b64decode(raw) if answer.get("isBase64Encoded") else raw.encode()
        return int(answer["statusCode"]), headers, body


class EventSources:
    """The queues' event source mappings and the EventBridge rules of the template, driven on demand."""

    def __init__(self, template: Template, processes: dict[str, FunctionProcess], sqs: Any, streams: Any) -> None:
        self._template = template
        self._processes = processes
        self._sqs = sqs
        self._streams = streams
        self._positions: dict[tuple[str, str], str] = {}  # (stream arn, shard id) -> next shard iterator
        self.triggers = template.queue_triggers()
        self.stream_triggers = template.stream_triggers()
        self.schedules = template.schedules()
        # Calls Lambda makes with a function's role on its behalf (polling its queue): function -> calls.
        self.service_calls: dict[str, list[dict[str, Any]]] = {}

    def _as(self, function: str, operation: str, queue_url: str) -> None:
        self.service_calls.setdefault(function, []).append(
            {"service": "sqs", "operation": operation, "region": self._template.region,
             "names": {"QueueUrl": queue_url}})

    def poll(self, queue: str, function: str, batch_size: int) -> int:
        url = self._template.physical[queue]
        self._as(function, "ReceiveMessage", url)
        messages = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=batch_size,
                                             AttributeNames=["All"]).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": self._template.arns[queue],
            "awsRegion": self._template.region} for m in messages]}
        try:
            answer = self._processes[function].invoke(event) or {}
            failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        except InvocationError:
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] in failed:
                # Lambda leaves it for the visibility timeout; the rehearsal shortens the wait to a second.
                self._sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                                    VisibilityTimeout=1)
            else:
                self._as(function, "DeleteMessage", url)
                self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def poll_stream(self, table: str, function: str, batch_size: int) -> int:
        """One round of a stream mapping, as Lambda runs it with the function's role: every shard from its start,
        the mapping's filter applied, retried from the first record the function reports failed."""
        arn = self._template.stream_arns[table]
        pattern = next(json.loads(f["Pattern"]) for r in self._template.of_type("AWS::Lambda::EventSourceMapping").values()
                       if r["Properties"]["FunctionName"]["Ref"] == function
                       for f in r["Properties"]["FilterCriteria"]["Filters"])
        self._stream_call(function, "DescribeStream", arn)
        handled = 0
        for shard in self._streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            position = (arn, shard["ShardId"])
            if position not in self._positions:
                self._stream_call(function, "GetShardIterator", arn)
                self._positions[position] = self._streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            self._stream_call(function, "GetRecords", arn)
            answer = self._streams.get_records(ShardIterator=self._positions[position], Limit=batch_size)
            self._positions[position] = answer["NextShardIterator"]
            records = [lambda_record(record, arn) for record in answer["Records"] if matches(pattern, record)]
            if not records:
                continue
            try:
                reply = self._processes[function].invoke({"Records": records}) or {}
                failed = [f["itemIdentifier"] for f in reply.get("batchItemFailures", [])]
            except InvocationError:
                failed = [records[0]["dynamodb"]["SequenceNumber"]]
            if failed:
                self._stream_call(function, "GetShardIterator", arn)
                self._positions[position] = self._streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
                    SequenceNumber=min(failed, key=int))["ShardIterator"]
            handled += len(records)
        return handled

    def _stream_call(self, function: str, operation: str, stream_arn: str) -> None:
        self.service_calls.setdefault(function, []).append(
            {"service": "dynamodbstreams", "operation": operation, "region": self._template.region,
             "names": {"StreamArn": stream_arn}})

    def fire(self, rule: str) -> Any:
        """Invoke the rule's one target; ``fire_all`` for a rule with several (one per scan segment)."""
        [answer] = self.fire_all(rule)
        return answer

    def fire_all(self, rule: str) -> list[Any]:
        answers = []
        for function, payload in [(f, p) for r, _, f, p in self.schedules if r == rule]:
            event = payload if payload is not None else {
                "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                "account": ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "region": self._template.region, "resources": [self._template.arns[rule]], "detail": {}}
            answers.append(self._processes[function].invoke(event))
        return answers

    def rate_rules(self) -> list[str]:
        return [rule for rule, expression, _, _ in self.schedules if expression.startswith("rate(")]

    def drain(self, max_rounds: int = 40) -> int:
        """Run the minute schedules and every queue's consumer until a whole round finds nothing to do."""
        handled = 0
        for _ in range(max_rounds):
            for rule in self.rate_rules():
                self.fire(rule)
            batch = sum(self.poll_stream(table, function, size) for table, function, size in self.stream_triggers)
            batch += sum(self.poll(queue, function, size) for queue, function, size in self.triggers)
            handled += batch
            if batch == 0:
                return handled
        raise AssertionError(f"queues still busy after {max_rounds} rounds")


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it over: the stream's ARN added, the time in epoch seconds."""
    change = dict(record["dynamodb"])
    if "ApproximateCreationDateTime" in change:
        change["ApproximateCreationDateTime"] = change["ApproximateCreationDateTime"].timestamp()
    return {**record, "dynamodb": change, "eventSourceARN": stream_arn}


def matches(pattern: Any, event: Any) -> bool:
    """The part of Lambda's event filtering the template uses: nested keys, lists of allowed values, and
    ``{"exists": true|false}``."""
    if isinstance(pattern, dict):
        if not isinstance(event, dict):
            return False
        return all(matches_key(value, key in event, event.get(key)) for key, value in pattern.items())
    raise ValueError(f"unsupported filter pattern {pattern!r}")


def matches_key(rule: Any, present: bool, value: Any) -> bool:
    if isinstance(rule, dict):
        return present and matches(rule, value)
    if not isinstance(rule, list):
        raise ValueError(f"unsupported filter rule {rule!r}")
    for allowed in rule:
        if isinstance(allowed, dict) and set(allowed) == {"exists"}:
            if bool(allowed["exists"]) == present:
                return True
        elif isinstance(allowed, dict):
            raise ValueError(f"unsupported filter operator {allowed!r}")
        elif present and value == allowed:
            return True
    return False
