"""Labels for the codes the product shows people: entry and event types, channels, rule layers, tier
bases, risk reasons, order states, reward kinds … as (Simplified Chinese, English); Traditional is derived
by OpenCC (web/i18n.py). A code with no label here is shown as it is: operators' own names (a custom
event type, a rule's code) are theirs to word. Codes whose labels predate this table live in LABELS under
a prefix (`rs_held`, `role_admin` …): PREFIXED names them, so both read through `t.code(kind, value)`."""

from __future__ import annotations

CODES: dict[str, dict[str, tuple[str, str]]] = {
    # Journal entry types (ledger/), as the member's history and the console's ledger show them.
    "entry": {
        "award": ("获得", "Earned"),
        "spend": ("使用", "Spent"),
        "expire": ("过期", "Expired"),
        "mature": ("生效 (退货期满)", "Matured"),
        "hold": ("冻结 (兑换中)", "Held for an order"),
        "capture": ("兑换扣除", "Redeemed"),
        "release": ("解冻 (订单取消)", "Released"),
        "reverse": ("退款冲回", "Refund reversal"),
        "refund": ("退款", "Refund"),
        "clawback": ("追回", "Clawed back"),
        "transfer": ("转赠", "Transfer"),
        "gift": ("赠送", "Gift"),
        "adjust": ("人工调整", "Adjustment"),
        "freeze": ("风控冻结", "Frozen"),
        "unfreeze": ("解除冻结", "Unfrozen"),
        "forfeit": ("销户清零", "Forfeited"),  # (注销 would become 登出, "sign out", in s2twp)
        "correct": ("规则更正", "Correction"),
        "extend": ("延长有效期", "Validity extended"),
        "red_packet": ("红包", "Red packet"),
        "exchange": ("合作方兑换", "Partner exchange"),
        "pool": ("拼积分", "Pooled points"),
        "donate": ("公益捐赠", "Donation"),
    },
    # Member events (events/), the rules' `events:` and the task list.
    "event": {
        "purchase": ("消费", "Purchase"),
        "refund": ("退款", "Refund"),
        "check_in": ("签到", "Check-in"),
        "share": ("分享", "Share"),
        "comment": ("评论", "Comment"),
        "review": ("评价", "Review"),
        "invite": ("邀请好友", "Invitation"),
        "invited": ("受邀入会", "Joined by invitation"),
        "register": ("注册", "Registration"),
        "profile": ("完善资料", "Profile completed"),
        "birthday": ("生日", "Birthday"),
        "browse": ("浏览", "Browsing"),
        "redeem": ("兑换", "Redemption"),
        "invite_purchase": ("好友首单", "Invitee's purchase"),
        "share_purchase": ("分享带来的消费", "Purchase from a share"),
        "group_completed": ("拼团成功", "Group buy completed"),
    },
    # Where an event or a message came from / goes to.
    "channel": {
        "app": ("APP", "App"),
        "h5": ("H5", "H5"),
        "mini_program": ("小程序", "Mini-program"),
        "pos": ("门店 POS", "Store POS"),
        "ecommerce": ("电商", "E-commerce"),
        "partner": ("合作方", "Partner"),
        "inapp": ("站内信", "In-app"),
        "email": ("电子邮件", "E-mail"),
        "sms": ("短信", "SMS"),
        "wechat": ("微信", "WeChat"),
        "webhook": ("Webhook", "Webhook"),
    },
    "layer": {"base": ("基础规则", "Base"), "campaign": ("活动规则", "Campaign"), "tier": ("等级规则", "Tier")},
    "stack": {"multiply": ("倍数连乘", "multipliers compound"), "add": ("倍数相加", "multipliers add")},
    # What a tier is measured on (programs/tiers.py).
    "basis": {"spend": ("消费金额 (¥)", "Spend (¥)"), "points": ("获得积分", "Points earned"),
              "score": ("综合评分", "Composite score")},
    "cap": {"minute": ("每分钟", "per minute"), "day": ("每日", "per day"), "week": ("每周", "per week"),
            "month": ("每月", "per month"), "lifetime": ("终身", "lifetime"), "member": ("每位会员", "per member")},
    "period": {"once": ("一次性", "Once"), "daily": ("每日", "Daily"), "weekly": ("每周", "Weekly")},
    "reward_kind": {
        "physical": ("实物", "Goods"), "coupon": ("优惠券", "Coupon"), "virtual": ("虚拟商品", "Virtual"),
        "service": ("服务", "Service"), "charity": ("公益", "Charity"), "privilege": ("权益卡", "Privilege"),
    },
    "coupon_status": {"issued": ("未使用", "Unused"), "used": ("已核销", "Used"), "void": ("已作废", "Void"),
                      "expired": ("已过期", "Expired")},
    # Risk reasons (risk/scoring.py, risk/scan.py) and the subject of a case.
    "risk_reason": {
        "earn_per_minute": ("每分钟获得积分过多", "Too many points a minute"),
        "redemptions_per_hour": ("每小时兑换过多", "Too many redemptions an hour"),
        "shared_device": ("同一设备多账户", "Accounts on one device"),
        "shared_ip": ("同一 IP 多账户", "Accounts on one IP"),
        "new_account": ("新注册账户", "New account"),
        "restricted_before": ("曾被限制", "Restricted before"),
        "honeypot": ("诱饵商品", "Honeypot reward"),
        "anomaly": ("行为异常", "Unusual behaviour"),
        "referral_cycle": ("邀请环", "Referral ring"),
        "referral_cluster": ("邀请团伙", "Referral cluster"),
        "shared_address": ("同一收货地址", "One delivery address"),
    },
    "subject": {"event": ("事件", "Event"), "redemption": ("兑换订单", "Redemption"), "member": ("会员", "Member"),
                "scan": ("关系扫描", "Graph scan")},
    # RFM segments (analytics/rfm.py names them in Chinese, as seed 001 does).
    "rfm_segment": {"休眠": ("休眠", "Dormant"), "流失預警": ("流失预警", "Churn warning"),
                    "高價值": ("高价值", "High value"), "中價值": ("中价值", "Medium value"),
                    "低頻": ("低频", "Low frequency"), "一般": ("一般", "Regular")},
    "packet_status": {"open": ("进行中", "Open"), "finished": ("已领完", "All claimed"),
                      "expired": ("已过期 (退回)", "Expired (returned)")},
    # The kinds of action the audit log is searched by (security/audit_keys.py).
    "audit_action": {
        "member_records": ("会员资料", "Members"), "points_moved": ("积分变动", "Points"),
        "adjust_approval": ("调整审批", "Approvals"), "event_intake": ("事件", "Events"),
        "rules_programme": ("规则与计划", "Rules and programme"), "mall_orders": ("积分商城", "Mall"),
        "coupon_write_off": ("优惠券核销", "Coupon write-offs"),
        "webhook_delivery": ("Webhook 与通知", "Webhooks and notifications"), "risk_control": ("风控", "Risk"),
        "campaign_ops": ("营销活动", "Campaigns"), "engagement_ops": ("会员互动", "Engagement"),
        "sign_in_access": ("登录与账号", "Sign-in and accounts"), "pii_viewed": ("查看个人数据", "Personal data viewed"),
        "other_writes": ("其他", "Other"),
    },
    # Adjustment requests (approvals/).
    "request_state": {"pending": ("待审批", "Pending"), "approved": ("已通过", "Approved"),
                      "rejected": ("已驳回", "Rejected")},
    "sort": {"popular": ("最受欢迎", "Popular"), "points": ("积分从低到高", "Fewest points"), "newest": ("最新上架", "Newest")},
}

# Code kinds whose labels are LABELS entries under a prefix (the older console pages'): t.code reads them there.
PREFIXED = {"order": "rs_", "case": "st_", "delivery": "st_", "restriction": "rk_", "finding": "f_",
            "risk_action": "action_", "role": "role_", "user_state": "us_"}
