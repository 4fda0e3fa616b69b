from loyalty.models.actions import (
    Action,
    EarningRule,
    EarningRuleVersion,
    Period,
    Rounding,
    RuleBudget,
    RuleCap,
    RuleCondition,
)
from loyalty.models.activity import (
    ActivityState,
    ActivityTransition,
    ChurnRisk,
    Gift,
    GiftGrant,
    KeyAction,
    MemberActivity,
)
from loyalty.models.adjustments import Adjustment, MemberErasure
from loyalty.models.badges import (
    ActionTally,
    Badge,
    BadgeAward,
    BadgeShare,
    MemberStreak,
    Streak,
)
from loyalty.models.campaigns import Campaign, CampaignRun, CampaignTarget
from loyalty.models.counters import RuleCounter
from loyalty.models.drafts import ProgramDraft, ProgramVersion
from loyalty.models.events import Event, EventBatchJob, EventReversal
from loyalty.models.insight import (
    CohortCell,
    DailyFigure,
    Funnel,
    FunnelDay,
    IndicatorCell,
    InsightState,
    KeyActiveDay,
    MemberFirst,
)
from loyalty.models.leaderboards import Leaderboard, LeaderboardScore, StaleLeaderboardSet
from loyalty.models.ledger import Currency, EntryKind, LedgerEntry, SourceType
from loyalty.models.lots import ExpiryPolicy, LotMovement, PointLot
from loyalty.models.program import Program
from loyalty.models.quests import Quest, QuestProgress, QuestStep
from loyalty.models.segments import Segment, SegmentCondition
from loyalty.models.simulation import SimulationRun
from loyalty.models.standing import MemberStanding
from loyalty.models.tiers import Privilege, Tier, TierChange
from loyalty.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "BadgeShare",
    "SimulationRun",
    "ProgramDraft",
    "ProgramVersion",
    "RuleBudget",
    "ChurnRisk",
    "Campaign",
    "CampaignRun",
    "CampaignTarget",
    "Segment",
    "SegmentCondition",
    "CohortCell",
    "DailyFigure",
    "Funnel",
    "FunnelDay",
    "IndicatorCell",
    "InsightState",
    "KeyActiveDay",
    "MemberFirst",
    "ActivityState",
    "ActivityTransition",
    "Gift",
    "GiftGrant",
    "KeyAction",
    "MemberActivity",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "ActionTally",
    "Badge",
    "BadgeAward",
    "Leaderboard",
    "LeaderboardScore",
    "StaleLeaderboardSet",
    "MemberStreak",
    "Quest",
    "QuestProgress",
    "QuestStep",
    "Streak",
    "Adjustment",
    "Action",
    "Currency",
    "EarningRule",
    "EarningRuleVersion",
    "EntryKind",
    "Event",
    "EventBatchJob",
    "EventReversal",
    "ExpiryPolicy",
    "LedgerEntry",
    "LotMovement",
    "MemberErasure",
    "MemberStanding",
    "Period",
    "PointLot",
    "Privilege",
    "Program",
    "Rounding",
    "RuleCap",
    "RuleCondition",
    "RuleCounter",
    "SourceType",
    "Tier",
    "TierChange",
]
