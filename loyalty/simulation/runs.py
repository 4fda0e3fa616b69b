"""Running a simulation: replay the period's history under the draft in a scratch, read its
figures and the live ones the same way, keep both on the run, drop the scratch. The run's row
(in the live tables) shows the progress as it goes and is where an operator cancels it.

A scratch is the machinery of a simulation, never a place for live work: the connection points
at it only for the replay, then back at the live tables.
"""

import time
import traceback
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.errors import InvalidInput
from loyalty.models import Program, ProgramDraft, SimulationRun
from loyalty.simulation.figures import most_changed, period_figures, tier_moves
from loyalty.simulation.replay import Cancelled, ReplayFailed, history_size, replay
from loyalty.simulation.scratch import scratch_session


def simulation_new(
    *,
    start: datetime,
    end: datetime,
    draft: ProgramDraft | None = None,
    definition: dict[str, Any] | None = None,
    label: str = "",
    actor=None,
) -> SimulationRun:
    """A queued run of ``draft``, of a program file's ``definition``, or of the live program."""
    if draft is not None:
        definition, label = draft.definition, label or draft.name
    return SimulationRun.objects.create(
        draft=draft,
        definition=definition,
        label=label
        or (gettext("A program file") if definition is not None else gettext("The live program")),
        start=start,
        end=end,
        created_by=actor if getattr(actor, "pk", None) else None,
    )


def simulation_run(run: SimulationRun) -> SimulationRun:
    """Run it to its end (or its cancellation); safe to call on a run another worker has
    started: it is then left alone."""
    if connection.vendor != "postgresql":  # a scratch is a PostgreSQL schema
        SimulationRun.objects.filter(pk=run.pk).update(
            status=SimulationRun.Status.FAILED,
            error=gettext("What-if simulations need PostgreSQL (DATABASE_URL=postgres://…)."),
            finished_at=timezone.now(),
        )
        return SimulationRun.objects.get(pk=run.pk)
    started = SimulationRun.objects.filter(pk=run.pk, status=SimulationRun.Status.QUEUED).update(
        status=SimulationRun.Status.RUNNING, total=history_size(run.end)
    )
    if not started:
        return SimulationRun.objects.get(pk=run.pk)
    clock = time.monotonic()
    status, results, error = SimulationRun.Status.DONE, None, ""
    try:
        results = _simulate(run)
    except Cancelled:
        status = SimulationRun.Status.CANCELLED
    except ReplayFailed as failed:
        status, error = SimulationRun.Status.FAILED, str(failed)
    except InvalidInput as invalid:  # the draft does not load
        status = SimulationRun.Status.FAILED
        error = "\n".join([str(invalid.message), *(invalid.details or [])])
    except Exception:  # reported on the run; the scratch is gone either way
        status, error = SimulationRun.Status.FAILED, traceback.format_exc(limit=8)
    SimulationRun.objects.filter(pk=run.pk).update(
        status=status,
        results=results,
        error=error,
        seconds=round(time.monotonic() - clock, 1),
        finished_at=timezone.now(),
    )
    return SimulationRun.objects.get(pk=run.pk)


def simulation_cancel(run: SimulationRun) -> None:
    """Ask the run to stop; it does after the batch it is replaying."""
    SimulationRun.objects.filter(
        pk=run.pk, status__in=[SimulationRun.Status.QUEUED, SimulationRun.Status.RUNNING]
    ).update(cancel_requested=True)
    SimulationRun.objects.filter(pk=run.pk, status=SimulationRun.Status.QUEUED).update(
        status=SimulationRun.Status.CANCELLED, finished_at=timezone.now()
    )


def _simulate(run: SimulationRun) -> dict[str, Any]:
    program = Program.objects.get(pk=1)
    with scratch_session() as schema:
        replayed = replay(
            schema=schema,
            start=run.start,
            end=run.end,
            definition=run.definition,
            run_id=run.pk,
        )
        simulated = period_figures(schema, run.start, run.end)
        actual = period_figures("public", run.start, run.end)
        moves = tier_moves("public", schema, run.end)
        changed = most_changed("public", schema, run.start, run.end)
    return {
        "replayed": vars(replayed),
        "actual": actual,
        "simulated": simulated,
        "tier_moves": moves,
        "most_changed": changed,
        "point_value": str(program.point_value),
        "money": program.money,
    }


def liability(figures: dict[str, Any]) -> int:
    """Points the period added to what the program owes: earned and bonus, less reversed."""
    return sum(by_currency.get("points", 0) for by_currency in figures["issued"].values())


def _rows(actual: dict, simulated: dict, value=lambda v: v) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(set(actual) | set(simulated)):
        a, s = value(actual.get(key)), value(simulated.get(key))
        rows.append({"label": key or "–", "actual": a, "simulated": s, "change": s - a})
    return rows


def _points(by_currency: dict | None) -> int:
    return (by_currency or {}).get("points", 0)


def _growth(by_currency: dict | None) -> int:
    return (by_currency or {}).get("growth", 0)


def _count(n: int | None) -> int:
    return n or 0


# The sections after the first: (key, title, the figure it reads, the value of one entry).
SECTIONS = (
    ("rule_points", _("Points by rule"), "by_rule", _points),
    ("rule_growth", _("Growth by rule"), "by_rule", _growth),
    ("action_points", _("Points by action"), "by_action", _points),
    ("tier_points", _("Points by tier (the member's tier after each event)"), "by_tier", _points),
    ("tier_growth", _("Growth by tier"), "by_tier", _growth),
    ("tiers", _("Members per tier at the period's end"), "tiers_at_end", _count),
    ("members", _("Points a member earned in the period"), "points_per_member", _count),
    ("caps", _("Caps hit (credits capped, and refused at a cap)"), "caps", _count),
    ("badges", _("Badges awarded"), "badges", _count),
    ("quests", _("Quests completed"), "quests", _count),
)


def comparison(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The results as tables of (label, actual, simulated, change), for the admin's page and
    the command: one section per figure."""
    actual, simulated = results["actual"], results["simulated"]
    issued = [
        {
            "label": f"{kind} {currency}",
            "actual": actual["issued"].get(kind, {}).get(currency, 0),
            "simulated": simulated["issued"].get(kind, {}).get(currency, 0),
        }
        for kind in ("earn", "bonus", "reverse")
        for currency in ("points", "growth")
    ]
    issued.append(
        {"label": "liability", "actual": liability(actual), "simulated": liability(simulated)}
    )
    for row in issued:
        row["change"] = row["simulated"] - row["actual"]
    return [
        {"key": "issued", "title": _("Issued in the period"), "rows": issued},
        *(
            {"key": key, "title": title, "rows": _rows(actual[name], simulated[name], value)}
            for key, title, name, value in SECTIONS
        ),
    ]
