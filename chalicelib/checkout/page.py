"""The hosted page, server-rendered: every screen is plain HTML that works without script; one small script
(``assets/checkout.js``, same origin) only polls the status while the payer pays elsewhere.

Every value shown is escaped here; no inline script or style, so the Content-Security-Policy allows nothing but
the hub's own two files (plus the channel's origin as a form target when the payer is handed a signed form).
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib.checkout.i18n import SCAN_APPS, method_name, t
from chalicelib.domain.money import Money
from chalicelib.domain.value_class import value_class

if TYPE_CHECKING:  # the payment flow's modules (risk control, step-up) load with the page's routes, not the session API
    from chalicelib.checkout.payer import View

ASSET_VERSION = "4"  # bump with the assets: the page links them with this, so caches never mix versions


@value_class
class Page:
    """An HTML answer of the checkout page, with its status code."""

    status: int
    html: str
    form_targets: tuple[str, ...] = ()  # origins a form on this page posts to (the CSP's form-action)


def _h(value: object) -> str:
    return escape(str(value), quote=True)


def money_text(lang: str, amount: int, currency: str) -> str:
    symbol = {"CNY": "¥", "USD": "US$", "EUR": "€", "HKD": "HK$", "GBP": "£"}.get(currency, "")
    return f"{symbol}{Money(amount, currency).to_decimal_string()} {currency}"


def local_time(lang: str, stamp: str) -> str:
    """Chinese payers read Beijing time; others UTC, said so."""
    from datetime import timedelta, timezone

    from chalicelib.domain.clock import parse_iso

    if lang == "zh-CN":
        moment = parse_iso(stamp).astimezone(timezone(timedelta(hours=8)))
        return moment.strftime("%Y-%m-%d %H:%M") + "（北京时间）"
    return parse_iso(stamp).strftime("%Y-%m-%d %H:%M") + " UTC"


def layout(lang: str, title: str, body: str, *, poll_url: str | None = None, state: str = "",
           lang_switch: str | None = None, scripts: tuple[str, ...] = ()) -> str:
    data = f' data-poll="{_h(poll_url)}" data-state="{_h(state)}"' if poll_url else ""
    switch = (f'<a class="lang" href="{_h(lang_switch)}" hreflang="{"en" if lang == "zh-CN" else "zh-CN"}">'
              f'{_h(t(lang, "language"))}</a>') if lang_switch else ""
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="same-origin"><title>{_h(title)}</title>'
        f'<link rel="stylesheet" href="/checkout-assets/checkout.css?v={ASSET_VERSION}">'
        f'<script src="/checkout-assets/checkout.js?v={ASSET_VERSION}" defer></script>'
        + "".join(f'<script src="/checkout-assets/{_h(name)}?v={ASSET_VERSION}" defer></script>' for name in scripts)
        + '</head>'
        f'<body{data}><main class="sheet" id="main">{switch}{body}</main></body></html>'
    )


def message_page(lang: str, status: int, kind: str, *, link: str | None = None, link_text: str | None = None,
                 support: str = "") -> Page:
    """Unknown, expired, refused: a clear page in the payer's language, never JSON or a trace."""
    action = f'<p><a class="button" href="{_h(link)}">{_h(link_text)}</a></p>' if link and link_text else ""
    body = (f'<section class="notice {kind}" aria-labelledby="h"><h1 id="h" tabindex="-1">{_h(t(lang, kind + "_title"))}'
            f'</h1><p>{_h(t(lang, kind + "_body"))}</p>{action}</section>{support}')
    return Page(status, layout(lang, t(lang, kind + "_title"), body))


class Renderer:
    """One session's page in one language. ``base`` is the session's page path (with its key)."""

    def __init__(self, view: View, lang: str, base: str, csrf: str) -> None:
        self.view, self.lang, self.base, self.csrf = view, lang, base, csrf
        self.session = view.session

    def _t(self, key: str, **values: str) -> str:
        return _h(t(self.lang, key, **values))

    def _amount(self) -> str:
        return money_text(self.lang, self.session.amount, self.session.currency)

    def _header(self) -> str:
        s = self.session
        expires = local_time(self.lang, s.expires_at)
        # Once paid or closed, a deadline to pay by would only confuse.
        deadline = (f' · <span>{self._t("expires", time=expires)}</span>'
                    if self.view.state not in ("paid", "closed") else "")
        return (f'<header class="summary"><p class="merchant">{self._t("pay_to")} <strong>{_h(s.merchant_name)}'
                f'</strong></p><p class="amount" aria-label="{self._t("amount")}">{_h(self._amount())}</p>'
                f'<p class="desc">{_h(s.description)}</p><p class="meta">{self._t("order")} {_h(s.merchant_order_no)}'
                f'{deadline}</p></header>')

    def support(self) -> str:
        s = self.session
        contact = s.support_contact or {}
        items = []
        if contact.get("phone"):
            items.append(f'<a href="tel:{_h(contact["phone"].replace(" ", ""))}">{_h(contact["phone"])}</a>')
        if contact.get("email"):
            items.append(f'<a href="mailto:{_h(contact["email"])}">{_h(contact["email"])}</a>')
        if contact.get("url"):
            items.append(f'<a href="{_h(contact["url"])}" rel="noreferrer">{self._t("contact")}</a>')
        reach = f'<p>{self._t("contact")}: {" · ".join(items)}</p>' if items else ""
        return (f'<footer class="support" aria-label="{self._t("support")}"><p>{self._t("support")} '
                f'{self._t("support_ref")}: <strong class="ref" id="support-ref">{_h(s.support_ref)}</strong></p>'
                f'{reach}</footer>')

    def _lang_switch(self) -> str:
        return f'{self.base}?lang={"en" if self.lang == "zh-CN" else "zh-CN"}'

    def _page(self, title: str, body: str, *, poll: bool = False, targets: tuple[str, ...] = (),
              status: int = 200, scripts: tuple[str, ...] = ()) -> Page:
        html = layout(self.lang, f"{title} · {self.session.merchant_name}",
                      self._header() + body + self.support(),
                      poll_url=f"{self.base}/status" if poll else None, state=self.view.state,
                      lang_switch=self._lang_switch(), scripts=scripts)
        return Page(status, html, targets)

    def _csrf_field(self) -> str:
        return (f'<input type="hidden" name="csrf" value="{_h(self.csrf)}">'
                f'<input type="hidden" name="lang" value="{_h(self.lang)}">')

    def render(self, *, choose: bool = False, step: str | None = None, error: str | None = None,
               field: str | None = None, remember: bool = False, notice: str | None = None,
               stepup: str | None = None, instalments: str | None = None) -> Page:
        state = self.view.state
        if state == "paid":
            return self.paid()
        if state in ("closed", "step_up") or error == "risk_denied":  # risk control's screens: chalicelib/stepup
            from chalicelib.stepup import on_checkout
            from chalicelib.stepup.screens import StepUpScreens

            screens = StepUpScreens(self)
            if state == "step_up" and not (choose and self.view.methods):  # a confirm's payer may switch method
                return screens.render(message=error, want=stepup,
                                      **on_checkout.screen_facts(self.session, self.view.payment))
            if state == "closed" and self.view.payment.failure_reason == "step_up_failed":
                return screens.failed()
            if error == "risk_denied" and state != "closed":
                return screens.refused()
        if state == "closed":
            return self.closed()
        if step == "card":
            return self.card_form(remember=remember, error=error, field=field, instalments=instalments)
        if state == "in_progress" and not choose:
            return self.in_progress()
        return self.choose(error=error, field=field, notice=notice)

    def paid(self) -> Page:
        back = f'<p><a class="button primary" href="{_h(self.session.return_url)}">{self._t("back_to_merchant")}</a></p>'
        body = (f'<section class="notice paid" aria-labelledby="h"><h1 id="h" tabindex="-1">{self._t("paid_title")}'
                f'</h1><p>{self._t("paid_body", amount=self._amount())}</p>{back}</section>')
        return self._page(t(self.lang, "paid_title"), body)

    def closed(self) -> Page:
        target = self.session.cancel_url or self.session.return_url
        body = (f'<section class="notice expired" aria-labelledby="h"><h1 id="h" tabindex="-1">'
                f'{self._t("expired_title")}</h1><p>{self._t("expired_body")}</p><p><a class="button" '
                f'href="{_h(target)}">{self._t("back_to_merchant")}</a></p></section>')
        return self._page(t(self.lang, "expired_title"), body, status=410)

    def _alert(self, error: str | None, field: str | None) -> str:
        if self.view.state == "failed_attempt" and self.view.attempt is not None and not error:
            reason = self.view.attempt.raw_status or str(self.view.attempt.status)
            return (f'<div class="alert" role="alert"><h2>{self._t("failed_title")}</h2>'
                    f'<p>{self._t("failed_body", reason=reason)}</p></div>')
        if error == "bad_input":
            return f'<div class="alert" role="alert"><p>{self._t("bad_input", field=field or "?")}</p></div>'
        if error == "wechat_auth":
            return (f'<div class="alert" role="alert"><h2>{self._t("error_title")}</h2>'
                    f'<p>{self._t("wx_auth_failed")}</p></div>')
        if error in ("method_unavailable", "error"):
            key = "method_unavailable" if error == "method_unavailable" else "error_body"
            return (f'<div class="alert" role="alert"><h2>{self._t("error_title")}</h2>'
                    f'<p>{self._t(key)}</p></div>')
        return ""

    def choose(self, *, error: str | None = None, field: str | None = None, notice: str | None = None) -> Page:
        methods = self.view.methods
        head = self._alert(error, field)
        if notice == "forgotten":
            head += f'<p class="note" role="status">{self._t("forgotten")}</p>'
        if not methods:
            body = head + f'<p class="alert" role="alert">{self._t("no_methods")}</p>' + self._cancel()
            return self._page(t(self.lang, "title"), body)
        buttons = []
        for method in methods:
            tag = (f' <span class="tag">{self._t("suggested")}</span>' if method == self.view.suggested_method
                   else f' <span class="tag">{self._t("remembered")}</span>'
                   if method == self.view.remembered_method else "")
            buttons.append(f'<li><button type="submit" name="method" value="{_h(method)}" class="method" '
                           f'data-method="{_h(method)}">{_h(method_name(self.lang, method))}{tag}</button></li>')
        remember = ""
        if self.session.payer.get("user_id"):
            checked = " checked" if self.view.remembered_method else ""
            remember = (f'<p class="check"><input type="checkbox" id="remember" name="remember" value="1"{checked}>'
                        f'<label for="remember">{self._t("remember")}</label></p>')
        form = (f'<form method="post" action="{_h(self.base)}/pay" class="methods" aria-labelledby="choose-h">'
                f'{self._csrf_field()}<h1 id="choose-h">{self._t("choose")}</h1><ul role="list">{"".join(buttons)}'
                f'</ul>{self._instalments(methods)}{remember}</form>')
        forget = ""
        if self.view.remembered_method:
            forget = (f'<form method="post" action="{_h(self.base)}/forget" class="forget">{self._csrf_field()}'
                      f'<button type="submit" class="link">{self._t("forget")}</button></form>')
        return self._page(t(self.lang, "title"), head + form + forget + self._cancel(), targets=self.view.form_targets)

    def _instalments(self, methods: list[str]) -> str:
        """A choice of instalment terms per channel that offers them for this amount (the merchant's fee table):
        each term with what every instalment comes to and the fee in all. The term chosen goes with the method
        button the payer then presses (``instalments_<channel>``); "pay in full" is the default."""
        from chalicelib.checkout.payer import instalment_offers

        groups = []
        for channel, offers in instalment_offers(self.session, methods).items():
            ccy = self.session.currency
            options = [f'<p class="check"><input type="radio" id="inst-{channel}-0" name="instalments_{channel}" '
                       f'value="" checked><label for="inst-{channel}-0">{self._t("in_full")}</label></p>']
            for offer in offers:
                parts = offer["instalments"]
                first, rest = parts[0]["amount"], parts[-1]["amount"]
                plan = (f'{len(parts)} × {money_text(self.lang, rest, ccy)}' if first == rest else
                        f'{money_text(self.lang, first, ccy)} + {len(parts) - 1} × {money_text(self.lang, rest, ccy)}')
                label = self._t("instalment_term", count=str(offer["count"]), plan=plan,
                                fee=money_text(self.lang, offer["buyer_fee"], ccy))
                options.append(f'<p class="check"><input type="radio" id="inst-{channel}-{offer["count"]}" '
                               f'name="instalments_{channel}" value="{offer["count"]}" data-fee="{offer["buyer_fee"]}">'
                               f'<label for="inst-{channel}-{offer["count"]}">{label}</label></p>')
            groups.append(f'<fieldset class="instalments" id="instalments-{channel}" '
                          f'aria-describedby="inst-note-{channel}"><legend>{self._t("instalments_" + channel)}'
                          f'</legend>{"".join(options)}<p class="note" id="inst-note-{channel}">'
                          f'{self._t("instalments_note")}</p></fieldset>')
        return "".join(groups)

    def _chosen_instalments(self) -> str:
        plan = self.view.payment.instalments
        if not plan:
            return ""
        ccy = self.session.currency
        text = self._t("instalment_chosen", count=str(plan["count"]), total=money_text(self.lang, plan["buyer_total"], ccy),
                       fee=money_text(self.lang, plan["buyer_fee"], ccy))
        return f'<p class="note" id="instalment-plan">{text}</p>'

    def _cancel(self) -> str:
        if not self.session.cancel_url:
            return ""
        return f'<p class="cancel"><a href="{_h(self.session.cancel_url)}">{self._t("cancel")}</a></p>'

    def _switch(self) -> str:
        return f'<p class="switch"><a href="{_h(self.base)}?choose=1">{self._t("switch")}</a></p>'

    def card_form(self, *, remember: bool, error: str | None, field: str | None,
                  instalments: str | None = None) -> Page:
        def row(name: str, label: str, *, auto: str, mode: str = "numeric", size: int = 20,
                required: bool = True) -> str:
            req = " required aria-required=\"true\"" if required else ""
            invalid = ' aria-invalid="true"' if field == f"card.{name}" else ""
            return (f'<p class="field"><label for="card-{name}">{self._t(label)}</label>'
                    f'<input id="card-{name}" name="card_{name}" autocomplete="{auto}" inputmode="{mode}" '
                    f'maxlength="{size}"{req}{invalid}></p>')

        fields = (row("number", "card_number", auto="cc-number", size=23)
                  + '<div class="pair">' + row("exp_month", "card_exp_month", auto="cc-exp-month", size=2)
                  + row("exp_year", "card_exp_year", auto="cc-exp-year", size=4) + "</div>"
                  + row("phone", "card_phone", auto="tel", mode="tel", size=20)
                  + row("holder_name", "card_name", auto="cc-name", mode="text", size=64, required=False))
        hidden = '<input type="hidden" name="method" value="unionpay.card">'
        hidden += '<input type="hidden" name="remember" value="1">' if remember else ""
        if instalments and instalments.isdigit():  # the term chosen with the method, checked again on submit
            hidden += f'<input type="hidden" name="instalments_unionpay" value="{_h(instalments)}">'
        body = (self._alert(error, field)
                + f'<form method="post" action="{_h(self.base)}/pay" class="card" aria-labelledby="card-h" novalidate>'
                f'{self._csrf_field()}{hidden}<h1 id="card-h">{self._t("card_title")}</h1>{fields}'
                f'<p class="note">{self._t("card_note")}</p>'
                f'<p><button type="submit" class="primary">{self._t("card_submit")}</button></p></form>'
                + self._switch())
        return self._page(t(self.lang, "card_title"), body)

    def in_progress(self) -> Page:
        attempt = self.view.attempt
        assert attempt is not None
        action: dict[str, Any] = self.view.payment.action or {}
        kind = action.get("type")
        name = method_name(self.lang, attempt.method)
        status = f'<p class="status" role="status" aria-live="polite" id="live">{self._t("waiting")}</p>'
        targets: tuple[str, ...] = ()
        scripts: tuple[str, ...] = ()
        if kind == "qr_code" or (kind == "app_params" and action.get("tn")):
            code = str(action.get("code_url") or action.get("qr_code") or action.get("tn"))
            app = SCAN_APPS[self.lang].get(attempt.method, name)
            screen = (f'<section class="qr" aria-labelledby="qr-h"><h1 id="qr-h">{self._t("scan", app=app)}</h1>'
                      f'<figure role="img" aria-label="{self._t("qr_label")}">{qr_svg(code)}</figure>'
                      f'{status}</section>')
        elif kind in ("redirect_url", "three_ds"):
            url = str(action.get("url") or action.get("redirect_url"))
            label = self._t("challenge") if kind == "three_ds" else self._t("continue", method=name)
            screen = (f'<section class="go" aria-labelledby="go-h"><h1 id="go-h">{_h(name)}</h1>'
                      f'<p><a class="button primary" id="continue" href="{_h(url)}" rel="noreferrer">{label}</a></p>'
                      f'{status}</section>')
        elif kind == "form_post":
            url = str(action.get("url"))
            fields = "".join(f'<input type="hidden" name="{_h(k)}" value="{_h(v)}">'
                             for k, v in (action.get("fields") or {}).items())
            targets = (_origin(url),)
            screen = (f'<section class="go" aria-labelledby="go-h"><h1 id="go-h">{_h(name)}</h1>'
                      f'<form method="post" action="{_h(url)}" id="channel-form">{fields}'
                      f'<button type="submit" class="primary" id="continue">{self._t("continue", method=name)}'
                      f'</button></form>{status}</section>')
        elif kind == "sms_verification":
            screen = (f'<form method="post" action="{_h(self.base)}/confirm" class="sms" aria-labelledby="sms-h">'
                      f'{self._csrf_field()}<h1 id="sms-h">{self._t("sms_title")}</h1>'
                      f'<p class="field"><label for="sms-code">{self._t("sms_code")}</label><input id="sms-code" '
                      f'name="sms_code" autocomplete="one-time-code" inputmode="numeric" maxlength="8" required '
                      f'aria-required="true"></p><p class="field"><label for="cvv">{self._t("cvv")}</label>'
                      f'<input id="cvv" name="cvv" autocomplete="cc-csc" inputmode="numeric" maxlength="4"></p>'
                      f'<p><button type="submit" class="primary">{self._t("sms_submit")}</button></p></form>')
        elif kind == "jsapi_params":
            screen, scripts = self._jsapi(action, name, status), ("wechat-jsapi.js",)
        else:
            screen = f'<section class="go"><h1>{_h(name)}</h1><p role="status" aria-live="polite" id="live">' \
                     f'{self._t("processing")}</p></section>'
        return self._page(t(self.lang, "title"), self._chosen_instalments() + screen + self._switch() + self._cancel(),
                          poll=True, targets=targets, scripts=scripts)

    def _jsapi(self, action: dict[str, Any], name: str, status: str) -> str:
        """WeChat's in-app browser: the signed parameters go to ``WeixinJSBridge`` (``assets/wechat-jsapi.js``). What
        the bridge answers is only shown as a hint; the page learns the outcome by polling the hub, as elsewhere."""
        params = {k: str(action[k]) for k in ("appId", "timeStamp", "nonceStr", "package", "signType", "paySign")
                  if k in action}
        notes = "".join(f' data-{k}="{self._t("wx_" + k)}"' for k in ("checking", "cancelled", "failed"))
        return (f'<section class="go" aria-labelledby="go-h"><h1 id="go-h">{_h(name)}</h1>'
                f'<p><button type="button" class="primary" id="wechat-pay" data-jsapi="{_h(json.dumps(params))}">'
                f'{self._t("wx_pay", amount=self._amount())}</button></p>'
                f'<p class="note" id="wechat-note" role="alert" hidden{notes}></p>{status}</section>')


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def qr_svg(data: str) -> str:
    import segno

    svg: str = segno.make(data, error="m").svg_inline(scale=5, svgclass="qr-code", lineclass=None, omitsize=True)
    return svg
