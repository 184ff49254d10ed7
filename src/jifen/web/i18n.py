"""Labels of the console and the member centre in 简体中文 (the default), 繁體中文 and English.

One catalogue: each entry is (Chinese, English) and the Chinese is the source of both scripts, normalised
to Simplified and converted to Traditional by OpenCC (jifen/hanzi.py) once per process, on the language's
first use. An entry written in Traditional characters still works: it is read as Simplified after
conversion. Codes shown to people (entry types, channels, risk reasons …) have their labels in
web/codes.py; numbers, ¥ and dates are formatted per locale by Babel (`Translator`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_skeleton
from babel.numbers import format_decimal

from jifen import hanzi
from jifen.web.analytics_labels import ANALYTICS_LABELS
from jifen.web.codes import CODES, PREFIXED
from jifen.web.member_labels import MEMBER_LABELS

LANGUAGES = ("zh-Hans", "zh-Hant", "en")
DEFAULT = "zh-Hans"
NAMES = {"zh-Hans": "简体中文", "zh-Hant": "繁體中文", "en": "English"}  # each in its own script
SHORT_NAMES = {"zh-Hans": "简", "zh-Hant": "繁", "en": "EN"}  # the member centre's narrow header
# What browsers, cookies of older versions and people type, to the three languages.
ALIASES = {"zh": "zh-Hans", "zh-cn": "zh-Hans", "zh-sg": "zh-Hans", "zh-hans": "zh-Hans", "zh-hans-cn": "zh-Hans",
           "zh-tw": "zh-Hant", "zh-hk": "zh-Hant", "zh-mo": "zh-Hant", "zh-hant": "zh-Hant", "zh-hant-tw": "zh-Hant",
           "en": "en"}
BABEL = {"zh-Hans": "zh_Hans_CN", "zh-Hant": "zh_Hant_TW", "en": "en"}

LABELS = {
    "title": ("Jifen 积分管理台", "Jifen console"),
    "overview": ("概览", "Overview"),
    "members": ("会员", "Members"),
    "member_count": ("会员数", "Members"),
    "issued": ("累计发放", "Issued"),
    "redeemed": ("累计兑换", "Redeemed"),
    "expired": ("累计过期", "Expired"),
    "adjusted": ("人工调整", "Adjusted"),
    "outstanding": ("流通积分", "Outstanding"),
    "liability": ("积分负债 (¥)", "Liability (¥)"),
    "wallet": ("积分账户", "Wallet"),
    "available": ("可用", "Available"),
    "pending": ("待生效", "Pending"),
    "held": ("冻结中 (订单)", "Held"),
    "frozen": ("风控冻结", "Frozen"),
    "debt": ("欠分", "Debt"),
    "activity": ("近 {days} 天动态", "Last {days} days"),
    "type": ("类别", "Type"),  # (not 类型: OpenCC s2twp makes it 型別, the programmers' word)
    "count": ("笔数", "Entries"),
    "points": ("积分", "Points"),
    "earned_spent": ("每日发放 / 消耗", "Earned / spent per day"),
    "earned": ("发放", "Earned"),
    "spent": ("消耗", "Spent"),
    "search": ("查找会员", "Find a member"),
    "search_hint": ("会员编号", "Member id"),
    "go": ("查找", "Go"),
    "joined": ("入会", "Joined"),
    "next_expiries": ("即将过期", "Expiring next"),
    "ledger": ("积分明细", "Ledger"),
    "entry": ("流水号", "Entry"),
    "occurred": ("发生时间", "Occurred"),
    "reference": ("单号 / 说明", "Reference / reason"),
    "login": ("登录", "Sign in"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "program": ("计划", "Programme"),
    "logout": ("退出登录", "Sign out"),
    "bad_login": ("用户名或密码错误 (连续多次错误后账号将暂时锁定)",
                  "Wrong username or password (repeated failures lock the account for a while)"),
    "not_found": ("找不到会员 {q}", "No member {q}"),
    "value": ("约值", "Worth"),
    "none": ("无", "None"),
    "chain": ("账本链头", "Chain head"),
    "rules": ("积分规则", "Rules"),
    "in_force": ("生效中 · 第 {v} 版 · 自 {since}", "In force · version {v} · since {since}"),
    "announced": ("已公告 · 第 {v} 版 · {since} 生效", "Announced · version {v} · effective {since}"),
    "no_rules": ("尚未设置规则", "No rules yet"),
    "stacking": ("叠加方式", "Stacking"),
    "stack_multiply": ("倍数连乘 (依层级与顺序)", "multipliers compound, in layer order"),
    "stack_add": ("倍数相加", "multipliers add"),
    "rule": ("规则", "Rule"),
    "layer": ("层级", "Layer"),
    "events": ("事件", "Events"),
    "condition": ("条件", "Condition"),
    "award": ("奖励", "Award"),
    "limits": ("上限 / 预算", "Caps / budget"),
    "window": ("活动时间", "Window"),
    "points_30d": ("近 30 天发放", "Issued, 30 days"),
    "tiers": ("会员等级", "Tiers"),
    "tier": ("等级", "Tier"),
    "threshold": ("门槛", "Threshold"),
    "retain": ("保级", "Retain"),
    "multiplier": ("积分倍率", "Earn ×"),
    "benefits": ("权益", "Benefits"),
    "basis": ("计算依据: {basis} · 滚动 {days} 天 · 宽限 {grace} 天",
              "Basis: {basis} · rolling {days} days · grace {grace} days"),
    "progress": ("距 {name} 还差 {remaining}", "{remaining} to {name}"),
    "top_tier": ("已是最高等级", "Top tier"),
    "grace_until": ("宽限至 {date}", "In grace until {date}"),
    "recent_events": ("近期事件", "Recent events"),
    "versions": ("历史版本", "Versions"),
    "public_rules": ("{name} · 积分规则", "{name} · points rules"),
    "point_value": ("{n} 积分可抵 ¥1", "{n} points are worth ¥1"),
    "expiry_rolling": ("积分自获得起 {months} 个月内有效", "Points are valid for {months} months from when they are earned"),
    "expiry_year": ("每年 12 月 31 日清除上一年度获得的积分", "Every 31 December, points earned the year before expire"),
    "expiry_never": ("积分永久有效", "Points never expire"),
    "earn": ("如何赚取积分", "How to earn points"),
    "coming": ("{date} 起生效的变更 (提前 {days} 天公告)", "Changes from {date} (announced {days} days ahead)"),
    "added": ("新增", "New"),
    "changed": ("调整", "Changed"),
    "withdrawn": ("取消", "Withdrawn"),
    "no_changes": ("暂无已公告的变更", "No changes announced"),
    "draft": ("规则草稿", "Draft rules"),
    "edit_rules": ("编辑 / 模拟", "Edit / simulate"),
    "draft_help": ("以表单或 YAML 编辑规则草稿 (两者是同一份草稿, 保存的是 YAML; 格式见 docs/rules.md)。"
                   "先模拟近 {days} 天的真实事件, 再设置生效时间公布新版本。",
                   "Edit the draft as a form or as YAML (the same draft; the YAML is what is saved; see docs/rules.md). "
                   "Simulate it on the last {days} days of real events, then publish a new version from an effective date."),
    "view_form": ("表单", "Form"),
    "view_yaml": ("YAML", "YAML"),
    "yaml_line": ("第 {n} 行", "line {n}"),
    "notice_help": ("新版本在生效时间之前即向会员公告 (规则页面), 应至少提前 {days} 天。",
                    "A new version is announced to members (on the rules page) until it takes effect: "
                    "give them at least {days} days."),
    "rule_code": ("代号", "Code"),  # (代码 becomes 程式碼, the programmers' word, in s2twp)
    "rule_name": ("名称", "Name"),
    "priority": ("顺序", "Priority"),
    "events_hint": ("事件类别, 以逗号分隔", "event types, comma-separated"),
    "award_fixed": ("固定积分", "Fixed points"),
    "award_per_yuan": ("每 ¥1 积分", "Points per ¥1"),
    "award_multiplier": ("倍数", "Multiplier"),
    "award_tier": ("等级倍率", "Tier multiplier"),
    "rounding": ("取整", "Rounding"),
    "round_down": ("舍去", "down"),
    "round_half_up": ("四舍五入", "half up"),
    "round_up": ("进位", "up"),
    "caps": ("每位会员上限", "Caps per member"),
    "rule_budget": ("共享预算", "Shared budget"),
    "budgets": ("预算 (积分)", "Budgets (points)"),
    "budget_name": ("预算名称", "Budget name"),
    "budget_amount": ("积分总额", "Points in all"),
    "starts_at": ("开始", "Starts"),
    "ends_at": ("结束", "Ends"),
    "enabled": ("启用", "Enabled"),
    "add_rule": ("添加规则", "Add a rule"),
    "add_budget": ("添加预算", "Add a budget"),
    "remove": ("删除", "Remove"),
    "more_fields": ("其他字段 (渠道、品类、账户、赞助、人群) 请在 YAML 中编辑, 表单会保留它们。",
                    "Other fields (channels, categories, wallet, sponsor, audience) are edited in the YAML; "
                    "the form keeps them."),
    "no_rules_yet": ("草稿中还没有规则", "The draft has no rules yet"),
    "checking": ("检查中…", "Checking…"),
    "check_ok": ("草稿无误", "The draft is valid"),
    "yaml_broken": ("YAML 无法解析, 请先在 YAML 中修正", "The YAML does not parse: fix it in the YAML view first"),
    "sim_counting": ("正在统计事件…", "Counting events…"),
    "sim_progress": ("已重放 {done} / {total} 个事件", "{done} of {total} events replayed"),
    "sim_events": ("{events} 个事件 · 受影响会员 {members}", "{events} events · {members} members affected"),
    "sim_failed": ("模拟失败: {error}", "The simulation failed: {error}"),
    "rule_errors": ("条件出错 (该事件不计此规则)", "Conditions that failed (the rule skipped for that event)"),
    "change_pct": ("变化", "Change"),
    "new_rule_pct": ("新增", "new"),
    "tiers_in_draft": ("等级在草稿中修改, 随规则版本公布并生效; 下表为现行等级",
                       "Tiers are edited in the draft and take effect with its version; below, the tiers in force"),
    "tier_changes": ("等级调整", "Tier changes"),
    "tier_terms": ("门槛 {threshold} · 积分 × {multiplier}", "threshold {threshold} · earn × {multiplier}"),
    "tier_code": ("等级代码", "Tier code"),
    "tier_name": ("等级名称", "Tier name"),
    "add_tier": ("添加等级", "Add a tier"),
    "tier_form_help": ("等级的其他设置 (依据、周期、宽限、评分、门槛优惠) 请在 YAML 中编辑。",
                       "Other tier settings (basis, window, grace, score, threshold discounts) are edited in the YAML."),
    "published": ("已公布第 {v} 版", "Version {v} published"),
    "announcement": ("会员将在规则页面看到的公告:", "The announcement members see on the rules page:"),
    "effective_from": ("生效时间", "Effective from"),
    "note": ("说明", "Note"),
    "simulate": ("模拟", "Simulate"),
    "publish": ("公布新版本", "Publish version"),  # (发布 becomes 釋出, "release", in s2twp)
    "forbidden": ("你的角色无权执行此操作", "Your role may not do that"),
    "refused_csrf": ("表单已过期或并非来自本管理台, 未作任何变更。请重新加载页面再试。",
                     "This form has expired or did not come from this console; nothing was changed. "
                     "Reload the page and try again."),
    "short_notice": ("只提前 {days} 天公告: 调整规则应至少提前 30 天公告会员",
                     "Only {days} days' notice: members should be told at least 30 days ahead"),
    "simulation": ("近 {days} 天模拟结果", "Simulated on the last {days} days"),
    "members_affected": ("受影响会员", "Members affected"),
    "baseline": ("现行规则", "Rules in force"),
    "difference": ("差额", "Difference"),
    "notifications": ("通知", "Notifications"),
    "last_7_days": ("近 7 天", "last 7 days"),
    "waiting": ("待分发 {n} 则", "{n} waiting for fan-out"),
    "channel": ("渠道", "Channel"),
    "st_delivered": ("已送达", "Delivered"),
    "st_pending": ("待发送 / 重试", "Pending / retrying"),
    "st_sending": ("发送中", "Sending"),
    "st_skipped": ("略过", "Skipped"),
    "st_dead": ("失败 (死信)", "Dead"),
    "webhooks": ("Webhook 订阅", "Webhook subscriptions"),
    "topics": ("主题", "Topics"),
    "stopped": ("已停用", "stopped"),
    "dead_letters": ("死信 (重试用尽)", "Dead letters"),
    "attempts": ("尝试次数", "Attempts"),
    "last_error": ("最后错误", "Last error"),
    "replay": ("重新发送", "Replay"),
    "mall": ("积分商城", "Points mall"),
    "reward": ("奖品", "Reward"),
    "category": ("分类", "Category"),
    "price_now": ("现价 (积分)", "Price now (points)"),
    "stock": ("库存", "Stock"),
    "sold": ("已兑换", "Redeemed"),
    "supplier": ("供应商", "Supplier"),
    "orders": ("最新兑换订单", "Latest redemptions"),
    "status": ("状态", "Status"),
    "rs_held": ("处理中", "Held"),
    "rs_fulfilled": ("已完成", "Fulfilled"),
    "rs_cancelled": ("已取消", "Cancelled"),
    "rs_refunded": ("已退款", "Refunded"),
    "rs_review": ("审核中", "In review"),
    "rs_rejected": ("已拒绝", "Rejected"),
    "users": ("用户", "Users"),
    "console_users": ("管理台用户", "Console users"),
    "display_name": ("姓名", "Name"),
    "role": ("角色", "Role"),
    "created": ("创建时间", "Created"),
    "last_login": ("最近登录", "Last sign-in"),
    "state": ("状态", "State"),
    "us_active": ("启用", "Active"),
    "us_disabled": ("已停用", "Disabled"),
    "us_locked": ("暂时锁定", "Locked"),
    "new_user": ("添加用户", "New user"),
    "create": ("创建", "Create"),
    "change_role": ("更改角色", "Change role"),
    "new_password": ("新密码", "New password"),
    "reset_password": ("重设密码", "Reset password"),
    "disable": ("停用", "Disable"),
    "password_rule": ("密码至少 10 个字符, 且不可与用户名相同; 更改密码或停用会让该用户在所有设备上退出登录。",
                      "Passwords have at least 10 characters and may not be the username; a new password or "
                      "disabling signs the user out everywhere."),
    "not_yourself": ("不能停用自己或更改自己的角色", "You cannot disable yourself or change your own role"),
    "role_admin": ("超级管理员", "Super-admin"),
    "role_operator": ("运营", "Operator"),
    "role_customer_service": ("客服", "Customer service"),
    "role_auditor": ("审计", "Auditor"),
    "role_finance": ("财务", "Finance"),
    "role_pos": ("门店 POS", "Store POS"),
    "reveal": ("显示个人数据 (留痕)", "Show personal data (logged)"),
    # Campaigns, experiments and bandits (web/campaigns_page.py)
    "campaigns": ("营销活动", "Campaigns"),
    "cs_draft": ("草稿", "draft"),
    "cs_live": ("进行中", "live"),
    "cs_ended": ("已结束", "ended"),
    "rollout": ("灰度比例", "Rollout"),
    "holdout": ("对照组", "Holdout"),
    "sponsor": ("分摊方", "Sponsor"),
    "campaign_cost": ("活动积分成本", "Points cost"),
    "sponsored": ("供应商分摊", "Co-funded by sponsor"),
    "budget": ("预算 (已用 / 总额)", "Budget (used / total)"),
    "participants": ("参与会员", "Participants"),
    "reached": ("覆盖", "reached"),
    "incremental_purchases": ("增量订单 (95% 置信区间)", "Incremental purchases (95% CI)"),
    "incremental_spend": ("增量消费 ¥ (95% 置信区间)", "Incremental spend ¥ (95% CI)"),
    "needs_holdout": ("需要对照组", "needs a holdout"),
    "new_campaign": ("新建营销活动", "New campaign"),
    "campaign_name": ("活动名称", "Name"),
    "effect": ("活动效果", "Effect"),
    "effect_multiplier": ("积分倍数", "Points multiplier"),
    "effect_bonus": ("每笔额外积分", "Bonus points per event"),
    "effect_per_yuan": ("每元额外积分", "Extra points per ¥"),
    "effect_double_value": ("积分价值翻倍日 (积分商城)", "Double-value redemption days (mall)"),
    "effect_value": ("倍数 / 积分", "Multiplier / points"),
    "effect_value_hint": ("翻倍日默认 2", "2 by default for double value"),
    "dv_weekdays": ("每周几 (1=周一)", "Weekdays (1 = Monday)"),
    "dv_days": ("每月几号", "Days of month"),
    "dv_days_hint": ("如 6,7; 留空为每天", "e.g. 6,7; blank: every day"),
    "starts": ("开始", "Starts"),
    "ends": ("结束", "Ends"),
    "budget_points": ("预算 (积分)", "Budget (points)"),
    "sponsor_share": ("分摊比例", "Sponsor's share"),
    "launch_now": ("立即上线", "Launch now"),
    "points_saved": ("兑换节省积分 (订单数)", "Points saved in the mall (orders)"),
    "done_campaign_created": ("营销活动已创建 (草稿)", "Campaign created (draft)"),
    "done_campaign_launched": ("营销活动已上线", "Campaign launched"),
    "experiments": ("A/B 实验", "Experiments"),
    "arm": ("组别", "Arm"),
    "conversion": ("转化率", "Conversion"),
    "spend_per_member": ("人均消费 ¥", "Spend per member ¥"),
    "redemption": ("兑换率", "Redemption"),
    "comparison": ("对比", "Comparison"),
    "bandit": ("多臂老虎机", "Bandit"),
    "pulls": ("展示次数", "Shown"),
    "best": ("最佳", "Best"),
    "regret": ("估计遗憾值", "Estimated regret"),
    # Risk control (web/risk_page.py)
    "risk": ("风控", "Risk"),
    "open_cases": ("待审 {n} 件", "{n} open"),
    "decision_saved": ("已处理。", "Done."),
    "review_queue": ("审核队列", "Review queue"),
    "subject": ("对象", "Subject"),
    "score": ("风险分", "Score"),
    "reasons": ("原因", "Reasons"),
    "reason": ("理由", "Reason"),
    "approve": ("通过", "Approve"),
    "reject": ("驳回", "Reject"),
    "freeze_member": ("驳回并冻结会员", "Reject and freeze member"),
    "action_review": ("待审", "Review"),
    "action_block": ("已拦截", "Blocked"),
    "action_allow": ("放行", "Allowed"),
    "action_flag": ("标记", "Flagged"),
    "restrictions": ("黑名单 / 冻结", "Blacklist / freezes"),
    "kind": ("类别", "Kind"),
    "until": ("截至", "Until"),
    "permanent": ("永久", "Permanent"),
    "appeal": ("申诉", "Appeal"),
    "appealed": ("已申诉:", "Appealed:"),
    "lift": ("解除", "Lift"),
    "rk_blacklist": ("黑名单", "Blacklist"),
    "rk_freeze": ("冻结", "Freeze"),
    "graph_scan": ("账户关系扫描", "Account graph scan"),
    "finding": ("发现", "Finding"),
    "shared": ("共用", "Shared"),
    "accounts": ("账户数", "Accounts"),
    "f_shared_device": ("同一设备多账户", "Accounts on one device"),
    "f_shared_ip": ("同一 IP 多账户", "Accounts on one IP"),
    "f_referral_cycle": ("邀请环", "Referral ring"),
    "f_referral_cluster": ("邀请团伙", "Referral cluster"),
    "f_shared_address": ("同一收货地址", "One delivery address"),
    "decided": ("最近处理", "Recently decided"),
    "decision": ("处理结果", "Decision"),
    "by": ("处理人", "By"),
    "st_approved": ("已通过", "Approved"),
    "st_rejected": ("已驳回", "Rejected"),
    "st_open": ("待审", "Open"),
    "automations": ("自动化营销", "Automations"),
    "automation": ("自动化", "Automation"),
    "trigger": ("触发", "Trigger"),
    "actions": ("动作", "Actions"),
    "last_run": ("上次运行", "Last run"),
    "every_hour": ("每小时", "Hourly"),
    "every_day": ("每天", "Daily"),
    "every_week": ("每周", "Weekly"),
    "on_event": ("事件 {type}", "On {type}"),
    "act_message": ("消息", "Message"),
    "act_award": ("赠积分", "Points"),
    "act_coupon": ("赠券", "Coupon"),
    "act_task": ("任务邀请", "Task invitation"),
    "runs": ("运行记录", "Runs"),
    "checked": ("检查", "Checked"),
    "matched": ("命中", "Matched"),
    "acted": ("已执行", "Acted upon"),
    "already": ("此前已触达", "Reached before"),
    "failed": ("失败", "Failed"),
    "as_done": ("已执行", "Done"),
    "as_repeat": ("此前已触达", "Reached before"),
    "as_failed": ("失败", "Failed"),
    # the dashboard (web/dashboard_page.py)
    "period": ("期间", "Period"),
    "last_days": ("近 {days} 天", "Last {days} days"),
    "all_tiers": ("全部等级", "All tiers"),
    "all_channels": ("全部渠道", "All channels"),
    "apply": ("应用", "Apply"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "bad_filter": ("筛选条件有误", "Bad filter"),
    "k_issued": ("期间发放", "Issued in period"),
    "k_redeemed": ("期间兑换", "Redeemed in period"),
    "k_expired": ("期间过期", "Expired in period"),
    "k_mau": ("月活跃会员", "Monthly active"),
    "k_active_members": ("活跃会员", "Active members"),
    "k_redeemers": ("兑换会员", "Redeeming members"),
    "r_consumption_rate": ("积分消耗率", "Consumption rate"),
    "r_active_rate": ("活跃率", "Active rate"),
    "r_redemption_rate": ("兑换率", "Redemption rate"),
    "target": ("目标", "Target"),
    "redeemed_p": ("兑换", "Redeemed"),
    "c_daily": ("每日发放 vs 兑换", "Issued vs redeemed per day"),
    "c_source": ("积分来源 (流水类型)", "Points by entry type"),
    "c_layers": ("规则发放 (按规则层级)", "Points paid by rule layer"),
    "c_tiers": ("等级分布", "Members by tier"),
    "c_rewards": ("热门兑换商品", "Top rewards"),
    "c_funnel": ("兑换漏斗", "Redemption funnel"),
    "c_rates": ("消耗率 / 活跃率 / 兑换率 (绿色为健康区间)", "Rates against their healthy range (green)"),
    "ax_day": ("日期", "Day"),
    "ax_day_ticks": ("%-m月%-d日", "%b %-d"),  # a Plotly (d3) date format
    "ax_members": ("会员数", "Members"),
    "ax_units": ("件数", "Units"),
    "ax_rate": ("比率 (%)", "Rate (%)"),
    "f_earned": ("获得积分", "Earned points"),
    "f_ordered": ("下单兑换", "Placed an order"),
    "f_fulfilled": ("兑换完成", "Order fulfilled"),
    # Operator actions on the member page (web/member_actions.py)
    "member_actions": ("操作", "Actions"),
    "adjust": ("调整积分", "Adjust points"),
    "adjust_points_hint": ("积分 (如 100 或 -50)", "Points (e.g. 100 or -50)"),
    "points_all_hint": ("积分 (留空 = 全部)", "Points (blank = all)"),
    "points_freeze": ("冻结积分", "Freeze points"),
    "points_unfreeze": ("解冻积分", "Unfreeze points"),
    "days_hint": ("天数 (留空 = 永久)", "Days (blank = permanent)"),
    "restrict": ("限制会员", "Restrict member"),
    "done_adjust": ("积分已调整", "Points adjusted"),
    "done_freeze": ("积分已冻结", "Points frozen"),
    "done_unfreeze": ("积分已解冻", "Points unfrozen"),
    "done_restrict": ("会员已受限", "Member restricted"),
    "lots": ("积分批次", "Lots"),
    "earned_at": ("获得时间", "Earned"),
    "expires": ("过期时间", "Expires"),
    "never": ("永不过期", "Never"),
    # Operator actions in the mall (web/mall_page.py)
    "new_reward": ("新增礼品", "New reward"),
    "code": ("编码", "Code"),
    "add": ("添加", "Add"),
    "save": ("保存", "Save"),
    "listed": ("上架", "Listed"),
    "stock_delta_hint": ("+补货 / -减少", "+add / -remove"),
    "unlimited_hint": ("留空 = 不限", "blank = unlimited"),
    "step_fulfil": ("发货完成", "Fulfil"),
    "step_cancel": ("取消", "Cancel"),
    "step_refund": ("退款", "Refund"),
    "step_approve": ("审核通过", "Approve"),
    "step_reject": ("审核驳回", "Reject"),
    "done_reward_created": ("礼品已添加", "Reward added"),
    "done_reward_saved": ("礼品已保存", "Reward saved"),
    "done_stock_changed": ("库存已更新", "Stock changed"),
    "done_order_fulfil": ("订单已完成", "Order fulfilled"),
    "done_order_cancel": ("订单已取消", "Order cancelled"),
    "done_order_refund": ("订单已退款", "Order refunded"),
    "done_order_approve": ("订单已通过", "Order approved"),
    "done_order_reject": ("订单已驳回", "Order rejected"),
    # The member list's filters and pages (web/member_list.py)
    "balance_from": ("余额 ≥", "Balance ≥"),
    "balance_to": ("余额 ≤", "Balance ≤"),
    "filter": ("筛选", "Filter"),
    "previous": ("上一页", "Previous"),
    "next": ("下一页", "Next"),
    "page_n": ("第 {n} 页", "Page {n}"),
    # The audit log (web/audit_page.py)
    "audit_log": ("审计日志", "Audit log"),
    "actor": ("操作人", "Actor"),
    "action": ("操作类别", "Action"),
    "member": ("会员", "Member"),
    "date_from": ("起始日期", "From"),
    "date_to": ("截止日期", "To"),
    "all": ("全部", "All"),
    "at": ("时间", "When"),
    "request": ("请求", "Request"),
    "result": ("结果", "Result"),
    "changed_rows": ("变更", "Changes"),
    "newest": ("最新", "Newest"),
    "older": ("更早", "Older"),
    "no_lines": ("没有符合条件的记录", "No lines match"),
    "api_key_actor": ("API 密钥 {name}", "API key {name}"),
    "see_approvals": ("查看审批", "See approvals"),
    "member_actor": ("会员本人", "The member"),
    # API keys (web/apikeys_page.py)
    "api_keys": ("API 密钥", "API keys"),
    "key_name": ("名称 (用途)", "Name (what uses it)"),
    "key_prefix": ("前缀", "Prefix"),
    "last_write": ("最近一次写入", "Last write"),
    "revoked": ("已吊销", "Revoked"),
    "revoke": ("吊销", "Revoke"),
    "new_key": ("新建 API 密钥", "New API key"),
    "secret_once": ("请立即复制保存: 此密钥只显示这一次, 系统不保存明文。",
                    "Copy it now: the secret is shown this once and is not stored."),
    "key_created": ("API 密钥 #{id} 已创建", "API key #{id} created"),
    "key_created_before": ("此表单已提交过, 密钥已创建 (不再显示)。", "This form was sent before: the key exists "
                           "(its secret is not shown again)."),
    "last_write_hint": ("最近一次写入取自审计日志; 只读请求不记录。", "Last write is read from the audit log; "
                        "reads are not logged."),
    # Webhooks (web/webhooks_page.py)
    "webhook_endpoints": ("Webhook 端点", "Webhook endpoints"),
    "new_endpoint": ("新增端点", "New endpoint"),
    "topics_hint": ("主题, 以逗号分隔 (* = 全部)", "Topics, comma-separated (* = all)"),
    "active": ("启用", "Active"),
    "delivery_log": ("投递记录", "Delivery log"),
    "deliveries_n": ("投递 {n} 次", "{n} deliveries"),
    "event_id": ("事件 ID", "Event id"),
    "topic": ("主题", "Topic"),
    "next_attempt": ("下次尝试", "Next attempt"),
    "delivered_at": ("送达时间", "Delivered"),
    "signing_secret": ("签名密钥", "Signing secret"),
    "endpoint_created": ("端点 #{id} 已创建", "Endpoint #{id} created"),
    "replay_hint": ("重新发送使用同一事件 ID (webhook-id), 接收方可据此去重。",
                    "A replay is sent with the same event id (webhook-id): receivers de-duplicate on it."),
    "done_replay": ("已重新排入发送队列", "Queued to be sent again"),
    "done_disable": ("端点已停用", "Endpoint disabled"),
    # Coupon write-offs (web/coupons_page.py)
    "write_offs": ("核销记录", "Write-offs"),
    "coupon": ("券码", "Coupon"),
    "merchant": ("商户", "Merchant"),
    "store": ("门店", "Store"),
    "written_off_by": ("核销人", "Written off by"),
    "written_off_at": ("核销时间", "Written off"),
    "write_off": ("核销", "Write off"),
    "new_write_off": ("核销优惠券", "Write off a coupon"),
    "done_write_off": ("优惠券已核销", "Coupon written off"),
    # Adjustment approvals (web/approvals_page.py)
    "approvals": ("调整审批", "Approvals"),
    "pending_requests": ("待审批", "Waiting for approval"),
    "decided_requests": ("最近审批", "Recently decided"),
    "maker": ("申请人", "Requested by"),
    "checker": ("审批人", "Decided by"),
    "requested_at": ("申请时间", "Requested"),
    "own_request": ("本人申请, 须由他人审批", "Your own request: another person decides it"),
    "done_adjust_requested": ("调整超过审批门槛, 已提交他人审批", "Above the approval threshold: sent for "
                              "a second person's approval"),
    "done_approved": ("已通过, 积分已入账", "Approved: the points are posted"),
    "done_rejected": ("已驳回, 未入账", "Rejected: nothing posted"),
    "approval_threshold": ("超过 {n} 积分的调整需他人审批", "Adjustments above {n} points need a second person's approval"),
    "entry_posted": ("流水 #{id}", "Entry #{id}"),
}



def language(value: str | None) -> str | None:
    """One of LANGUAGES for a language tag (zh-CN, zh_TW, zh-Hant, en-US …); None for anything else."""
    if not value:
        return None
    parts = value.strip().replace("_", "-").lower().split("-")
    for n in range(len(parts), 0, -1):  # zh-Hant-HK → zh-hant; en-GB → en
        if "-".join(parts[:n]) in ALIASES:
            return ALIASES["-".join(parts[:n])]
    return None


def from_accept_language(header: str | None) -> str | None:
    """The first of the browser's languages that we speak (the q-values are in preference order already)."""
    for part in (header or "").split(","):
        found = language(part.split(";")[0])
        if found:
            return found
    return None


class _Catalogue(Mapping[str, dict[str, str]]):
    """One catalogue's labels by language, each language's converted on its first use rather than at import:
    OpenCC's pass over some 800 labels cost every server worker, command and test ~0.1 s on a quiet
    machine and seconds under load (issue 14), and an English page needs neither script. Two threads
    converting the same language at once each get the same table (OpenCC is deterministic)."""

    def __init__(self, entries: dict[str, tuple[str, str]]) -> None:
        self._entries = entries
        self._done: dict[str, dict[str, str]] = {}

    def __getitem__(self, lang: str) -> dict[str, str]:
        found = self._done.get(lang)
        if found is None:
            found = self._done[lang] = self._convert(lang)
        return found

    def _convert(self, lang: str) -> dict[str, str]:
        if lang == "zh-Hans":
            return {key: hanzi.simplified(zh) for key, (zh, _) in self._entries.items()}
        if lang == "zh-Hant":
            return {key: hanzi.traditional(text) for key, text in self["zh-Hans"].items()}
        if lang == "en":
            return {key: en for key, (_, en) in self._entries.items()}
        raise KeyError(lang)

    def __iter__(self) -> Iterator[str]:
        return iter(LANGUAGES)

    def __len__(self) -> int:
        return len(LANGUAGES)


def _catalogue(entries: dict[str, tuple[str, str]]) -> Mapping[str, dict[str, str]]:
    return _Catalogue(entries)


assert not LABELS.keys() & MEMBER_LABELS.keys(), "a label key is defined twice"
assert not (LABELS.keys() | MEMBER_LABELS.keys()) & ANALYTICS_LABELS.keys(), "a label key is defined twice"
CATALOGUE = _catalogue(LABELS | MEMBER_LABELS | ANALYTICS_LABELS)
CODE_CATALOGUE = {kind: _catalogue(codes) for kind, codes in CODES.items()}


@dataclass(frozen=True)
class Translator:
    """`t('key', n=3)` in a template, plus the code labels and locale formats of one language."""

    lang: str

    def __call__(self, key: str, **kw) -> str:
        return CATALOGUE[self.lang][key].format(**kw)

    def template(self, key: str) -> str:
        """The label with its {placeholders} left in, for a page's script to fill."""
        return CATALOGUE[self.lang][key]

    def has(self, key: str) -> bool:
        return key in CATALOGUE[self.lang]

    def code(self, kind: str, value: str | None) -> str:
        """A code's label; a code without one (an operator's own name) as it is."""
        if value is None:
            return ""
        if kind in PREFIXED:
            key = PREFIXED[kind] + value
            return CATALOGUE[self.lang][key] if key in CATALOGUE[self.lang] else value
        return CODE_CATALOGUE[kind][self.lang].get(value, value)

    def codes(self, kind: str, values, sep: str = ", ") -> str:
        return sep.join(self.code(kind, v) for v in values or ())

    def num(self, value: int | Decimal | float | str, digits: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(Decimal(str(value)), format=pattern, locale=BABEL[self.lang])

    def signed(self, value: int) -> str:
        return ("+" if value > 0 else "") + self.num(value)

    def money(self, value: Decimal | int | str) -> str:
        """¥ with two decimals: ¥ in every language (the programme's currency is the yuan, never CN¥)."""
        return "¥" + self.num(value, 2)

    def date(self, value: dt.date | dt.datetime | str | None, tz: str = "Asia/Shanghai") -> str:
        """A calendar date the way the language writes it (2026年12月3日 · Dec 3, 2026)."""
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
        if isinstance(value, dt.datetime):
            value = value.astimezone(ZoneInfo(tz)).date()
        return format_date(value, "medium", locale=BABEL[self.lang])

    def datetime(self, value: dt.datetime | str | None, tz: str = "Asia/Shanghai") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return format_datetime(value, "short", tzinfo=ZoneInfo(tz), locale=BABEL[self.lang])

    def month(self, value: dt.date | dt.datetime) -> str:
        return format_skeleton("yMMM", value, locale=BABEL[self.lang])


def translator(lang: str) -> Translator:
    return Translator(language(lang) or DEFAULT)
