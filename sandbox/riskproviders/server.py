"""One sandbox for the three outside services risk control uses, each speaking its provider's protocol:

  POST /v205/events?return_score=true   Sift Events API: ``$api_key`` checked, a payment_abuse score answered
  POST /sms/                            Aliyun Dysmsapi SendSms: the HMAC-SHA1 signature checked, the code kept
                                        as the payer's phone would show it (``sent``)
  POST /faceid/                         Tencent Cloud FaceID DetectAuth / GetDetectInfoEnhanced, TC3 checked

Control (tests play the payer and the provider's moods): ``scores[user_id]`` fixes a score, ``delay_s`` slows the
risk service, ``down`` makes it answer 503; ``face_results[biz_token]`` is what the payer did at the face page.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from chalicelib.stepup import face, sms
from sandbox.common.httpserver import BackgroundHTTPServer, Request, Response, Router, json_response


@dataclass
class RiskProvidersSandbox:
    sift_api_key: str = field(default_factory=lambda: secrets.token_hex(16))
    aliyun_id: str = field(default_factory=lambda: "LTAI" + secrets.token_hex(8))
    aliyun_secret: str = field(default_factory=lambda: secrets.token_hex(15))
    tencent_id: str = field(default_factory=lambda: "AKID" + secrets.token_hex(8))
    tencent_key: str = field(default_factory=lambda: secrets.token_hex(16))
    scores: dict[str, float] = field(default_factory=dict)
    delay_s: float = 0.0
    down: bool = False
    sent: list[dict[str, str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    face_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    face_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        router = Router()
        router.add("POST", "/v205/events", self._sift)
        router.add("POST", "/sms/", self._sms)
        router.add("POST", "/faceid/", self._face)
        self._server = BackgroundHTTPServer(router, lambda r: json_response(404, {"error": "no such route"}))

    def start(self, port: int = 0) -> str:
        self.url = self._server.start("127.0.0.1", port)
        return self.url

    def stop(self) -> None:
        self._server.stop()

    def codes_for(self, phone: str) -> list[str]:
        return [json.loads(m["TemplateParam"])["code"] for m in self.sent if m["PhoneNumbers"] == phone]

    # Sift: authenticated by the REST API key in the body
    def _sift(self, request: Request) -> Response:
        if self.down:
            return json_response(503, {"status": 51, "error_message": "Service unavailable"})
        event = request.json()
        if event.get("$api_key") != self.sift_api_key:
            self.refused.append("sift")
            return json_response(401, {"status": 51, "error_message": "Invalid API key"})
        self.events.append({k: v for k, v in event.items() if k != "$api_key"})
        user = str(event.get("$user_id"))
        score = self.scores.get(user, min(0.99, event.get("$amount", 0) / 1e12))
        answer = json_response(200, {"status": 0, "error_message": "OK", "time": 0, "request": "",
                                     "score_response": {"status": 0, "user_id": user, "scores": {"payment_abuse": {
                                         "score": score, "reasons": [{"name": "sandbox", "value": str(score)}]}}}})
        answer.delay_before_send_s = self.delay_s
        return answer

    # Aliyun SendSms: RPC signature over every parameter but Signature
    def _sms(self, request: Request) -> Response:
        params = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        signature = params.pop("Signature", "")
        if params.get("AccessKeyId") != self.aliyun_id or sms.sign(params, self.aliyun_secret) != signature:
            self.refused.append("sms")
            return json_response(400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"})
        with self._lock:
            self.sent.append(params)
        return json_response(200, {"Code": "OK", "Message": "OK", "BizId": secrets.token_hex(10),
                                   "RequestId": secrets.token_hex(16)})

    # Tencent FaceID: TC3-HMAC-SHA256 over the body and headers
    def _face(self, request: Request) -> Response:
        timestamp = int(request.headers.get("x-tc-timestamp", "0"))
        expected = face.authorization(self.tencent_id, self.tencent_key, host=request.headers.get("host", ""),
                                      body=request.body, timestamp=timestamp)
        if request.headers.get("authorization") != expected:
            self.refused.append("face")
            return json_response(200, {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure",
                                                              "Message": "signature"}}})
        body = request.json()
        action = request.headers.get("x-tc-action")
        if action == "DetectAuth":
            token = secrets.token_hex(16)
            self.face_sessions[token] = {"rule_id": body["RuleId"]}
            return json_response(200, {"Response": {"BizToken": token, "Url": f"{self.url}/faceid/page/{token}",
                                                    "RequestId": secrets.token_hex(8)}})
        if action == "GetDetectInfoEnhanced":
            result = self.face_results.get(body.get("BizToken", ""))
            text = {} if result is None else {"ErrCode": result.get("err", 0), "LiveStatus": result.get("live", 0),
                                              "Sim": str(result.get("sim", 90))}
            return json_response(200, {"Response": {"Text": text, "RequestId": secrets.token_hex(8)}})
        return json_response(200, {"Response": {"Error": {"Code": "InvalidAction", "Message": str(action)}}})
