"""The hosted checkout page's step-up screens (zh-CN and en): choose how to verify, type the SMS code, go to the
face check, confirm with the device's authenticator; and the refusal and "verification failed" screens.

Drawn inside the page's own frame (``checkout/page.py`` Renderer) and, like the rest of the page, plain HTML that
works without script, except WebAuthn, which only a script can drive: its button is ``hidden`` until
``assets/checkout_stepup.js`` finds the browser able to use it. No inline script or style: the page's CSP holds.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.checkout.page import Page, Renderer

SCRIPTS = ("webauthn_step_up.js", "checkout_stepup.js")  # served with the page's assets, same origin

TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "请验证身份",
        "intro": "为保障您的资金安全，本次支付需要再验证一次。验证通过前不会扣款。",
        "webauthn": "使用本机指纹或面容验证", "sms": "发送验证码到 {phone}", "sms_any": "发送短信验证码",
        "face": "刷脸验证",
        "sms_title": "输入短信验证码", "sms_sent": "验证码已发送到 {phone}，5 分钟内有效。",
        "sms_code": "6 位验证码", "sms_submit": "验证并支付", "sms_again": "重新发送验证码",
        "other_way": "换一种验证方式",
        "face_title": "刷脸验证", "face_go": "前往刷脸验证", "face_done": "我已完成刷脸",
        "face_note": "完成后会自动返回本页面。",
        "waiting": "请在设备上完成验证…",
        "cancelled": "验证已取消或未被识别，未扣款。您可以重试或换一种验证方式。",
        "wrong": "验证码不正确，还可以再试 {left} 次。",
        "expired": "验证已过期，请重新获取。",
        "rate_limited": "验证码发送过于频繁，请稍后再试或换一种验证方式。",
        "not_finished": "刷脸验证尚未完成，请完成后再试。",
        "unavailable": "此验证方式暂时不可用，请换一种。",
        "refused_title": "支付未通过安全检查",
        "refused_body": "出于安全原因，这笔支付无法用该方式完成，未扣款。您可以换一种支付方式，或联系商户。",
        "failed_title": "身份验证未通过",
        "failed_body": "验证失败次数过多，本次支付已取消，未扣款。请返回商户重新下单，或联系商户。",
        "another_method": "换一种支付方式", "back": "返回商户",
    },
    "en": {
        "title": "Confirm it's you",
        "intro": "For your security this payment needs one more check. Nothing is charged until you pass it.",
        "webauthn": "Use this device's fingerprint or face", "sms": "Text a code to {phone}",
        "sms_any": "Text me a code", "face": "Verify with your face",
        "sms_title": "Enter the code we texted you", "sms_sent": "We sent a code to {phone}. It works for 5 minutes.",
        "sms_code": "6-digit code", "sms_submit": "Verify and pay", "sms_again": "Send a new code",
        "other_way": "Verify another way",
        "face_title": "Face verification", "face_go": "Continue to face verification",
        "face_done": "I have finished", "face_note": "You come back to this page when you are done.",
        "waiting": "Follow your device's prompt…",
        "cancelled": "The check was cancelled or not recognised. Nothing was charged. Try again or verify another way.",
        "wrong": "That code is not right. {left} tries left.",
        "expired": "The check expired. Start it again.",
        "rate_limited": "Too many codes were sent. Try again later or verify another way.",
        "not_finished": "The face check is not finished yet. Finish it, then try again.",
        "unavailable": "This way to verify is not available right now. Please use another.",
        "refused_title": "Payment declined for your security",
        "refused_body": "This payment cannot be made with this method for security reasons. Nothing was charged. "
                        "You can use another method or contact the shop.",
        "failed_title": "Verification failed",
        "failed_body": "Too many verification attempts failed, so this payment was cancelled. Nothing was charged. "
                       "Go back to the shop to order again, or contact the shop.",
        "another_method": "Use another method", "back": "Back to the shop",
    },
}
MESSAGES = ("cancelled", "wrong", "expired", "rate_limited", "not_finished", "unavailable")


def _h(value: object) -> str:
    return escape(str(value), quote=True)


def t(lang: str, key: str, **values: str) -> str:
    text = TEXT[lang][key]
    return text.format(**values) if values else text


class StepUpScreens:
    """The step-up screens of one rendering of the page."""

    def __init__(self, renderer: Renderer) -> None:
        self.r = renderer
        self.lang = renderer.lang
        self.payment = renderer.view.payment

    def _t(self, key: str, **values: str) -> str:
        return _h(t(self.lang, key, **values))

    def _alert(self, message: str | None, left: int) -> str:
        if message not in MESSAGES:
            return '<p class="alert" role="alert" id="stepup-message" hidden></p>'
        return (f'<p class="alert" role="alert" id="stepup-message">'
                f'{self._t(message, left=str(left)) if message == "wrong" else self._t(message)}</p>')

    def render(self, *, message: str | None, left: int, phone_masked: str | None, want: str | None,
               methods: list[str], face_url: str | None = None) -> Page:
        """``want``: the payer asked to choose again (``choose``); otherwise a started SMS or face challenge shows
        its own screen."""
        step_up = self.payment.step_up or {}
        started = step_up.get("status") == "started" and want != "choose"
        if started and step_up.get("method") == "sms":
            return self.sms(message=message, left=left, phone_masked=phone_masked)
        if started and step_up.get("method") == "face" and face_url:
            return self.face(message=message, left=left, url=face_url)
        return self.choose(message=message, left=left, phone_masked=phone_masked, methods=methods)

    def _form(self, inner: str, *, css: str = "stepup-start") -> str:
        return (f'<form method="post" action="{_h(self.r.base)}/stepup" class="{css}">{self.r._csrf_field()}'
                f'{inner}</form>')

    def choose(self, *, message: str | None, left: int, phone_masked: str | None, methods: list[str]) -> Page:
        items = []
        if "webauthn" in methods:
            # Hidden until the script finds WebAuthn in this browser; the texts it shows come in the page's language.
            data = "".join(f' data-msg-{k.replace("_", "-")}="{self._t(k, left="")}"'
                           for k in ("waiting", "cancelled", "expired", "unavailable"))
            items.append(f'<li id="stepup-webauthn-box" hidden data-url="{_h(self.r.base)}/stepup/webauthn" '
                         f'data-csrf="{_h(self.r.csrf)}"{data}><button type="button" class="method primary" '
                         f'id="stepup-webauthn">{self._t("webauthn")}</button></li>')
        if "sms" in methods:
            label = self._t("sms", phone=phone_masked) if phone_masked else self._t("sms_any")
            items.append('<li>' + self._form(f'<button type="submit" name="method" value="sms" class="method" '
                                             f'id="stepup-sms">{label}</button>') + '</li>')
        if "face" in methods:
            items.append('<li>' + self._form('<button type="submit" name="method" value="face" class="method" '
                                             f'id="stepup-face">{self._t("face")}</button>') + '</li>')
        if not items:
            message = "unavailable"
        switch = (f'<p class="switch"><a href="{_h(self.r.base)}?choose=1">{self._t("another_method")}</a></p>'
                  if self.r.view.methods else "")  # only a confirm's payment is still open to another method
        body = (f'<section class="stepup" aria-labelledby="stepup-h"><h1 id="stepup-h" tabindex="-1">'
                f'{self._t("title")}</h1><p>{self._t("intro")}</p>{self._alert(message, left)}'
                f'<ul role="list" class="methods">{"".join(items)}</ul>{switch}</section>' + self.r._cancel())
        return self.r._page(t(self.lang, "title"), body, scripts=SCRIPTS)

    def sms(self, *, message: str | None, left: int, phone_masked: str | None) -> Page:
        sent = f'<p>{self._t("sms_sent", phone=phone_masked)}</p>' if phone_masked else ""
        invalid = ' aria-invalid="true" aria-describedby="stepup-message"' if message == "wrong" else ""
        verify = self._form(
            f'<input type="hidden" name="step" value="verify"><p class="field"><label for="stepup-code">'
            f'{self._t("sms_code")}</label><input id="stepup-code" name="code" autocomplete="one-time-code" '
            f'inputmode="numeric" pattern="[0-9]*" maxlength="6" required aria-required="true"{invalid}></p>'
            f'<p><button type="submit" class="primary" id="stepup-verify">{self._t("sms_submit")}</button></p>',
            css="sms")
        again = self._form(f'<button type="submit" name="method" value="sms" class="link">{self._t("sms_again")}'
                           '</button>', css="again")
        body = (f'<section class="stepup" aria-labelledby="stepup-h"><h1 id="stepup-h" tabindex="-1">'
                f'{self._t("sms_title")}</h1>{sent}{self._alert(message, left)}{verify}{again}'
                f'<p class="switch"><a href="{_h(self.r.base)}?stepup=choose">{self._t("other_way")}</a></p>'
                '</section>' + self.r._cancel())
        return self.r._page(t(self.lang, "sms_title"), body)

    def face(self, *, message: str | None, left: int, url: str) -> Page:
        done = self._form(f'<input type="hidden" name="step" value="verify"><button type="submit" class="link" '
                          f'id="stepup-face-done">{self._t("face_done")}</button>', css="again")
        body = (f'<section class="stepup" aria-labelledby="stepup-h"><h1 id="stepup-h" tabindex="-1">'
                f'{self._t("face_title")}</h1>{self._alert(message, left)}<p><a class="button primary" '
                f'id="stepup-face-go" href="{_h(url)}" rel="noreferrer">{self._t("face_go")}</a></p>'
                f'<p class="note">{self._t("face_note")}</p>{done}'
                f'<p class="switch"><a href="{_h(self.r.base)}?stepup=choose">{self._t("other_way")}</a></p>'
                '</section>' + self.r._cancel())
        return self.r._page(t(self.lang, "face_title"), body)

    def refused(self) -> Page:
        """Risk control refused the method the payer picked: nothing was charged; another method may do."""
        other = (f'<p><a class="button primary" href="{_h(self.r.base)}?choose=1">{self._t("another_method")}</a></p>'
                 if self.r.view.methods else "")
        target = self.r.session.cancel_url or self.r.session.return_url
        body = (f'<section class="notice refused" aria-labelledby="h"><h1 id="h" tabindex="-1">'
                f'{self._t("refused_title")}</h1><p role="alert">{self._t("refused_body")}</p>{other}'
                f'<p><a class="button" href="{_h(target)}">{self._t("back")}</a></p></section>')
        return self.r._page(t(self.lang, "refused_title"), body, status=403)

    def failed(self) -> Page:
        target = self.r.session.cancel_url or self.r.session.return_url
        body = (f'<section class="notice expired" aria-labelledby="h"><h1 id="h" tabindex="-1">'
                f'{self._t("failed_title")}</h1><p>{self._t("failed_body")}</p><p><a class="button" '
                f'href="{_h(target)}">{self._t("back")}</a></p></section>')
        return self.r._page(t(self.lang, "failed_title"), body, status=410)
