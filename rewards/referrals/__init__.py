"""Referrals (邀请有礼): invite codes, attribution at registration, qualification by a qualifying
action, both members credited through the rules, fraud held for review, refunds reversed."""
