"""Message texts per topic and language (Chinese, the default, and English), and which member channels each
topic uses. A member's `lang` attribute picks the script: zh / zh-Hans Simplified, zh-Hant Traditional
(converted by OpenCC, jifen/hanzi.py, as the console's labels are)."""

from __future__ import annotations

from typing import cast

from jifen import hanzi

TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "points.expiring": {
        "zh": ("積分即將過期", "您有{points}分將於{date}過期{reward_text}。"),
        "en": ("Points expiring soon", "{points} of your points expire on {date}{reward_text}."),
    },
    "points.expired": {
        "zh": ("積分已過期", "您有{points}分已於今日過期。"),
        "en": ("Points expired", "{points} of your points expired today."),
    },
    "tier.changed": {
        "zh": ("會員等級變更", "您的會員等級已由{old}變更為{new}。"),
        "en": ("Your tier changed", "Your tier is now {new} (was {old})."),
    },
    "points.reversed": {
        "zh": ("積分已扣回", "因訂單退款,{points}分已扣回。"),
        "en": ("Points taken back", "{points} points were taken back after a refund."),
    },
    # Redemption status: points reserved for an order, then spent or returned.
    "points.held": {
        "zh": ("兌換處理中", "已為您的兌換預留{points}分{ref}。"),
        "en": ("Redemption in progress", "{points} points are reserved for your redemption{ref}."),
    },
    "points.spent": {
        "zh": ("積分已使用", "您已使用{points}分{ref}。"),
        "en": ("Points used", "You used {points} points{ref}."),
    },
    "points.released": {
        "zh": ("兌換已取消", "您的兌換已取消{ref},{points}分已退回您的賬戶。"),
        "en": ("Redemption cancelled", "Your redemption was cancelled{ref}; {points} points are back."),
    },
    # Marketing (campaigns): the text comes with the message. Sent only with the member's consent for the
    # channel (members/consent.py); every other topic here is transactional and does not need it.
    "marketing.message": {
        "zh": ("{title}", "{body}"),
        "en": ("{title}", "{body}"),
    },
}
MARKETING_TOPICS = frozenset({"marketing.message"})
REWARD_TEXT = {"zh": ",可兌換價值{value}元的{name}", "en": " — enough for {name} (worth ¥{value})"}

# Member channels per topic; a stage of a topic may add channels (seed 001: SMS one month ahead).
MEMBER_CHANNELS: dict[str, tuple[str, ...]] = {
    "points.expiring": ("inapp",),
    "points.expiring:1m": ("inapp", "sms", "wechat"),
    "points.expired": ("inapp",),
    "tier.changed": ("inapp", "email", "wechat"),
    "points.reversed": ("inapp",),
    "points.held": ("inapp",),
    "points.spent": ("inapp",),
    "points.released": ("inapp",),
    "marketing.message": ("inapp", "email", "sms", "wechat"),
}


def channels_for(topic: str, payload: dict) -> tuple[str, ...]:
    stage = payload.get("stage")
    allowed = MEMBER_CHANNELS.get(f"{topic}:{stage}") or MEMBER_CHANNELS.get(topic, ())
    if topic in MARKETING_TOPICS and payload.get("channels"):  # an automation's message names its channels
        return tuple(c for c in allowed if c in payload["channels"])
    return allowed


def render(topic: str, payload: dict, lang: str = "zh") -> tuple[str, str]:
    """(title, body); unknown fields stay visible as {name} rather than failing."""
    script = "zh-Hant" if lang == "zh-Hant" else "zh-Hans"
    lang = "en" if lang == "en" else "zh"
    texts = hanzi.in_script(TEMPLATES[topic][lang], script) if lang == "zh" else TEMPLATES[topic][lang]
    values = {k: ("" if v is None else v) for k, v in payload.items()}
    values["ref"] = f" ({payload['reference']})" if payload.get("reference") else ""
    reward = payload.get("reward")
    values["reward_text"] = (hanzi.in_script(REWARD_TEXT[lang], script) if lang == "zh" else REWARD_TEXT[lang]).format(
        **reward) if reward else ""
    return cast(tuple[str, str], tuple(t.format_map(_Keep(values)) for t in texts))


class _Keep(dict):
    def __missing__(self, key):
        return "{" + key + "}"
