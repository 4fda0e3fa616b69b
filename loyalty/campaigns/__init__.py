"""Campaigns: an operator's action on a segment, run now or on a schedule (docs/campaigns.md)."""
