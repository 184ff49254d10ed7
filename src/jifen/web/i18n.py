"""Console labels in Simplified Chinese (default) and English."""

LANGUAGES = ("zh", "en")

LABELS = {
    "title": ("Jifen 積分管理台", "Jifen console"),
    "overview": ("概覽", "Overview"),
    "members": ("會員", "Members"),
    "member_count": ("會員數", "Members"),
    "issued": ("累計發放", "Issued"),
    "redeemed": ("累計兌換", "Redeemed"),
    "expired": ("累計過期", "Expired"),
    "adjusted": ("人工調整", "Adjusted"),
    "outstanding": ("流通積分", "Outstanding"),
    "liability": ("積分負債 (¥)", "Liability (¥)"),
    "wallet": ("積分賬戶", "Wallet"),
    "available": ("可用", "Available"),
    "pending": ("待生效", "Pending"),
    "held": ("凍結中 (訂單)", "Held"),
    "frozen": ("風控凍結", "Frozen"),
    "debt": ("欠分", "Debt"),
    "activity": ("近 {days} 天動態", "Last {days} days"),
    "type": ("類型", "Type"),
    "count": ("筆數", "Entries"),
    "points": ("積分", "Points"),
    "earned_spent": ("每日發放 / 消耗", "Earned / spent per day"),
    "earned": ("發放", "Earned"),
    "spent": ("消耗", "Spent"),
    "search": ("查找會員", "Find a member"),
    "search_hint": ("會員編號", "Member id"),
    "go": ("查詢", "Go"),
    "joined": ("入會", "Joined"),
    "next_expiries": ("即將過期", "Expiring next"),
    "ledger": ("積分明細", "Ledger"),
    "entry": ("流水號", "Entry"),
    "occurred": ("發生時間", "Occurred"),
    "reference": ("單號 / 說明", "Reference / reason"),
    "login": ("登入", "Sign in"),
    "api_key": ("API 密鑰", "API key"),
    "logout": ("登出", "Sign out"),
    "bad_key": ("密鑰無效或已撤銷", "Unknown or revoked key"),
    "not_found": ("找不到會員 {q}", "No member {q}"),
    "value": ("約值", "Worth"),
    "none": ("無", "None"),
    "chain": ("賬本鏈頭", "Chain head"),
}


def translator(lang: str):
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str, **kw) -> str:
        return LABELS[key][index].format(**kw)

    return t
