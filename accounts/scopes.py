"""The scopes an API client can hold. A view names the scopes it needs in ``required_scopes``."""

MEMBERS_READ = "members:read"
MEMBERS_WRITE = "members:write"
MEMBERS_TOKEN = "members:token"
EVENTS_WRITE = "events:write"
EVENTS_READ = "events:read"
REWARDS_READ = "rewards:read"
REDEMPTIONS_WRITE = "redemptions:write"
OPERATOR = "operator"

SCOPES: dict[str, str] = {
    MEMBERS_READ: "Read members, their standing, ledger, badges and rank",
    MEMBERS_WRITE: "Create and update members",
    MEMBERS_TOKEN: "Mint short-lived member tokens for the member's own client",
    EVENTS_WRITE: "Report member events (single, batch) and reverse them",
    EVENTS_READ: "Read events and batch jobs",
    REWARDS_READ: "Read the rewards catalog",
    REDEMPTIONS_WRITE: "Redeem rewards for members and cancel redemptions",
    OPERATOR: "Operator operations: adjustments, bulk awards, reports",
}

SCOPE_CHOICES = [(code, f"{code} - {text}") for code, text in SCOPES.items()]


def unknown_scopes(scopes: list[str]) -> list[str]:
    return [scope for scope in scopes if scope not in SCOPES]
