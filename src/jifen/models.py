"""Every table, imported in one place for Alembic and for tests."""

from jifen.approvals.models import AdjustmentRequest  # noqa: F401
from jifen.automations.models import Automation, AutomationAction, AutomationReach, AutomationRun  # noqa: F401
from jifen.campaigns.models import BanditArm, Campaign, Experiment  # noqa: F401
from jifen.db import Base
from jifen.engagement.models import (  # noqa: F401
    AwardBudget,
    Badge,
    Friendship,
    InviteCode,
    MakeupCards,
    MemberCredit,
    Pool,
    PoolContribution,
    RedPacket,
    RedPacketShare,
    Referral,
    Task,
    TaskProgress,
    Team,
    TeamMember,
)
from jifen.events.models import Event  # noqa: F401
from jifen.idempotency import IdempotencyRecord  # noqa: F401
from jifen.ledger.models import (  # noqa: F401
    Account,
    ChainCheckpoint,
    ChainHead,
    Hold,
    JournalEntry,
    Lot,
    LotMove,
    Posting,
)
from jifen.mall.models import Coupon, Redemption, Reward  # noqa: F401
from jifen.members.models import Consent, Member, RetentionRun  # noqa: F401
from jifen.notify.models import Delivery, ExpiryReminder, InboxItem, OptOut, WebhookSubscription  # noqa: F401
from jifen.outbox import OutboxMessage  # noqa: F401
from jifen.programs.models import Program, Wallet  # noqa: F401
from jifen.risk.models import MemberDevice, MemberRestriction, RiskCase, RiskModel, RiskScan  # noqa: F401
from jifen.rules.models import RuleSet, RuleUsage  # noqa: F401
from jifen.security.audit import AuditEntry, AuditHead  # noqa: F401
from jifen.security.models import ApiKey  # noqa: F401
from jifen.security.sessions import ConsoleSession, ConsoleUser  # noqa: F401

metadata = Base.metadata
