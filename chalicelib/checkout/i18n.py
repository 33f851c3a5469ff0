"""The page's words in Chinese (zh-CN) and English, and how the payer's language is chosen."""

from __future__ import annotations

LANGS = ("zh-CN", "en")

TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "收银台", "pay_to": "付款给", "amount": "金额", "order": "订单号", "expires": "请在 {time} 前完成支付",
        "choose": "选择支付方式", "pay_with": "使用{method}支付", "remember": "记住我的选择，下次优先显示",
        "suggested": "建议改用",
        "remembered": "上次使用", "forget": "忘记我保存的支付方式", "forgotten": "已忘记您保存的支付方式。",
        "continue": "前往{method}付款", "scan": "请使用{app}扫描二维码付款",
        "waiting": "等待付款结果…", "qr_label": "付款二维码", "switch": "换一种支付方式",
        "paid_title": "支付成功", "paid_body": "您已成功支付 {amount}。", "back_to_merchant": "返回商户",
        "failed_title": "支付未成功", "failed_body": "上一次支付没有成功（{reason}）。您可以重试或换一种支付方式。",
        "expired_title": "订单已过期", "expired_body": "此收银台已过期或已关闭，未扣款。请返回商户重新下单。",
        "unknown_title": "找不到该收银台", "unknown_body": "链接无效或已被修改。请返回商户重新打开收银台。",
        "error_title": "暂时无法完成", "error_body": "请稍后再试，或换一种支付方式。",
        "forbidden_title": "请求已过期", "forbidden_body": "请刷新页面后重试。",
        "cancel": "取消并返回商户", "support": "需要帮助？", "support_ref": "客服参考号",
        "contact": "联系商户", "no_methods": "暂时没有可用的支付方式，请稍后再试或联系商户。",
        "card_title": "银联卡支付", "card_number": "卡号", "card_exp_month": "有效期（月）",
        "card_exp_year": "有效期（年）", "card_phone": "预留手机号", "card_name": "持卡人姓名（可选）",
        "card_note": "卡号由支付平台直接加密保存，商户看不到您的卡号。", "card_submit": "获取验证码并支付",
        "sms_title": "输入短信验证码", "sms_code": "短信验证码", "cvv": "安全码 CVV（信用卡）",
        "sms_submit": "确认支付", "challenge": "前往银行验证", "language": "English",
        "processing": "银行正在处理，请稍候…", "bad_input": "请检查：{field}",
        "method_unavailable": "该支付方式暂时不可用，请换一种。",
        "wx_pay": "微信支付 {amount}", "wx_checking": "正在确认付款结果…",
        "wx_cancelled": "您已取消付款。可以再付一次，或换一种支付方式。",
        "wx_failed": "微信未能完成付款。可以再试一次，或换一种支付方式。",
        "wx_auth_failed": "未能通过微信确认您的身份，请重试或换一种支付方式。",
        "instalments_alipay": "花呗分期（支付宝）", "instalments_unionpay": "信用卡分期（银联）",
        "in_full": "不分期，一次付清", "instalment_term": "{count}期：{plan}，手续费共{fee}",
        "instalments_note": "手续费由您承担，已计入每期还款。选好期数后点击上方对应的付款方式。",
        "instalment_chosen": "分{count}期付款，共还{total}（含手续费{fee}）",
    },
    "en": {
        "title": "Checkout", "pay_to": "Pay to", "amount": "Amount", "order": "Order", "expires": "Pay before {time}",
        "choose": "Choose how to pay", "pay_with": "Pay with {method}", "remember": "Remember my choice for next time",
        "suggested": "Try this instead",
        "remembered": "Last used", "forget": "Forget my saved method", "forgotten": "Your saved method is forgotten.",
        "continue": "Continue to {method}", "scan": "Scan the QR code with {app} to pay",
        "waiting": "Waiting for your payment…", "qr_label": "Payment QR code", "switch": "Use another method",
        "paid_title": "Payment successful", "paid_body": "You paid {amount}.", "back_to_merchant": "Back to the shop",
        "failed_title": "Payment not completed",
        "failed_body": "The last payment did not go through ({reason}). Try again or use another method.",
        "expired_title": "This checkout has expired",
        "expired_body": "This checkout expired or was closed; nothing was charged. Go back to the shop to order again.",
        "unknown_title": "Checkout not found",
        "unknown_body": "The link is not valid or was changed. Go back to the shop and open the checkout again.",
        "error_title": "Could not complete this step", "error_body": "Please try again shortly, or use another method.",
        "forbidden_title": "This form has expired", "forbidden_body": "Reload the page and try again.",
        "cancel": "Cancel and go back to the shop", "support": "Need help?", "support_ref": "Support reference",
        "contact": "Contact the shop", "no_methods": "No payment method is available right now. Try later or contact the shop.",
        "card_title": "UnionPay card", "card_number": "Card number", "card_exp_month": "Expiry month",
        "card_exp_year": "Expiry year", "card_phone": "Phone number registered with the card",
        "card_name": "Cardholder name (optional)",
        "card_note": "Your card number goes straight to the payment hub's vault; the shop never sees it.",
        "card_submit": "Send code and pay",
        "sms_title": "Enter the SMS code", "sms_code": "SMS code", "cvv": "CVV (credit cards)",
        "sms_submit": "Confirm payment", "challenge": "Continue to your bank's check", "language": "中文",
        "processing": "Your bank is processing the payment…", "bad_input": "Please check: {field}",
        "instalments_alipay": "Huabei instalments (Alipay)", "instalments_unionpay": "Card instalments (UnionPay)",
        "in_full": "Pay in full", "instalment_term": "{count} instalments: {plan}, fee {fee} in all",
        "instalments_note": "You pay the instalment fee; it is included in each instalment. Choose a term, then the "
                            "payment method above.",
        "instalment_chosen": "In {count} instalments: {total} in all, fee {fee} included",
        "method_unavailable": "This method is not available right now; please use another.",
        "wx_pay": "Pay {amount} with WeChat", "wx_checking": "Checking your payment…",
        "wx_cancelled": "You cancelled the payment. Pay again, or use another method.",
        "wx_failed": "WeChat could not complete the payment. Try again, or use another method.",
        "wx_auth_failed": "WeChat could not confirm who you are. Try again, or use another method.",
    },
}

METHOD_NAMES: dict[str, dict[str, str]] = {
    "zh-CN": {"wechat.native": "微信支付", "wechat.h5": "微信支付", "wechat.jsapi": "微信支付",
              "alipay.qr": "支付宝扫码", "alipay.page": "支付宝",
              "alipay.wap": "支付宝（手机）", "unionpay.gateway": "银联网关", "unionpay.quickpass": "云闪付",
              "unionpay.card": "银联卡", "ecny.wallet": "数字人民币", "paypal.wallet": "PayPal",
              "stripe.checkout": "银行卡（Stripe）"},
    "en": {"wechat.native": "WeChat Pay", "wechat.h5": "WeChat Pay", "wechat.jsapi": "WeChat Pay",
           "alipay.qr": "Alipay QR", "alipay.page": "Alipay",
           "alipay.wap": "Alipay (mobile)", "unionpay.gateway": "UnionPay online banking",
           "unionpay.quickpass": "UnionPay QuickPass", "unionpay.card": "UnionPay card", "ecny.wallet": "e-CNY",
           "paypal.wallet": "PayPal", "stripe.checkout": "Card (Stripe)"},
}

SCAN_APPS: dict[str, dict[str, str]] = {
    "zh-CN": {"wechat.native": "微信", "alipay.qr": "支付宝", "ecny.wallet": "数字人民币 App",
              "unionpay.quickpass": "云闪付 App"},
    "en": {"wechat.native": "WeChat", "alipay.qr": "Alipay", "ecny.wallet": "the e-CNY app",
           "unionpay.quickpass": "the UnionPay app"},
}


def choose_lang(asked: str | None, session_locale: str | None, accept_language: str | None) -> str:
    """An explicit choice on the page, then the merchant's locale for the session, then the browser's."""
    for value in (asked, session_locale):
        if value in LANGS:
            return value
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "zh-CN"


def t(lang: str, key: str, **values: str) -> str:
    text = TEXT[lang][key]
    return text.format(**values) if values else text


def method_name(lang: str, method: str) -> str:
    return METHOD_NAMES[lang].get(method, method)
