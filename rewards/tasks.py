"""Celery tasks of the rewards app: thin; they take ids and call one service."""

from celery import shared_task

from rewards.referrals.qualification import referral_reward, referral_take_back, referrals_sweep

# Safe to run twice, so retried on any failure (the database away, a deadlock lost).
RETRIED = {
    "time_limit": 5 * 60,
    "soft_time_limit": 4 * 60,
    "acks_late": True,
    "autoretry_for": (Exception,),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(name="rewards.referral_reward", **RETRIED)
def referral_reward_task(referral_id: int) -> dict:
    """Credit both members of a qualified referral (idempotent: a retry records nothing twice)."""
    referral = referral_reward(referral_id=referral_id)
    return {"referral_id": referral_id, "state": referral.state if referral else None}


@shared_task(name="rewards.referral_take_back", **RETRIED)
def referral_take_back_task(referral_id: int) -> dict:
    """Reverse the credits of a referral refunded or rejected (idempotent)."""
    return {"referral_id": referral_id, "reversed": referral_take_back(referral_id=referral_id)}


@shared_task(name="rewards.referrals_sweep", time_limit=30 * 60)
def referrals_sweep_task() -> dict:
    """Referrals past their window expired; credits that waited too long posted."""
    return referrals_sweep()
