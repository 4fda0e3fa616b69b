"""Program drafts and versions: a draft is edited apart from the live program, compared with it,
published atomically (now or when its time comes), kept as a version, restorable; events are
credited wholly under one version or the other."""

import copy
import threading
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone

from loyalty.engine.events import EventInput, record_event
from loyalty.models import EarningRule, Program, ProgramDraft, ProgramVersion
from loyalty.simulation.drafts import (
    as_yaml,
    draft_diff,
    draft_new,
    draft_problems,
    draft_publish,
    live_definition,
    publish_due_drafts,
    version_restore,
)
from tests.concurrency import race
from tests.factories import make_rule
from tests.helpers import assert_balances_match_ledger

pytestmark = pytest.mark.django_db

_keys = iter(range(10**6))


def buy(member: str = "ann"):
    return record_event(
        client=None,
        event=EventInput(
            external_id=member,
            action="purchase",
            idempotency_key=f"d-{next(_keys)}",
            attributes={"amount": "100"},
        ),
    ).outcome


def rule_in(definition: dict, code: str) -> dict:
    return next(rule for rule in definition["rules"] if rule["code"] == code)


@pytest.fixture
def program(db):
    make_rule("purchase", code="per-yuan", points_per_unit="1", unit_attribute="amount")
    make_rule("purchase", code="visit", growth_per_occurrence=5)


def doubled(draft: ProgramDraft) -> ProgramDraft:
    definition = copy.deepcopy(draft.definition)
    rule_in(definition, "per-yuan")["points_per_unit"] = "2.0000"
    draft.definition = definition
    draft.save()
    return draft


def test_a_draft_changes_nothing_live_until_it_is_published(program):
    draft = draft_new(name="Double points")
    assert draft.definition == live_definition() and draft_diff(draft) == []
    doubled(draft)
    assert buy()["points"] == 100  # the live program still pays one point a yuan
    diff = draft_diff(draft)
    assert ("remove", "-  points_per_unit: '1.0000'") in diff
    assert ("add", "+  points_per_unit: '2.0000'") in diff

    version = draft_publish(draft)
    assert (version.number, Program.objects.get().version) == (1, 1)
    answer = buy()
    assert answer["points"] == 200 and answer["program_version"] == 1
    assert rule_in(version.definition, "per-yuan")["points_per_unit"] == "2.0000"
    draft.refresh_from_db()
    assert draft.status == "published" and draft.published_as == version
    assert draft_publish(draft) == version  # published once
    assert ProgramVersion.objects.count() == 1
    assert_balances_match_ledger()


def test_publishing_makes_the_live_program_exactly_the_draft(program):
    draft = draft_new(name="Without visits")
    draft.definition["rules"] = [r for r in draft.definition["rules"] if r["code"] != "visit"]
    draft.save()
    draft_publish(draft)
    assert not EarningRule.objects.get(code="visit").is_active  # switched off, not deleted
    assert buy()["growth"] == 0
    assert draft_diff(draft_new(name="Again")) == []


def test_a_version_restored_as_a_draft_brings_the_program_back(program):
    first = draft_publish(draft_new(name="As it is"))
    draft_publish(doubled(draft_new(name="Double")))
    assert buy()["points"] == 200
    restored = version_restore(first)
    assert restored.based_on == first and restored.definition == first.definition
    third = draft_publish(restored)
    assert third.number == 3 and buy()["points"] == 100
    assert third.definition == first.definition


def test_a_draft_that_does_not_load_is_refused_with_its_place_named(program):
    broken = draft_new(name="Broken")
    rule_in(broken.definition, "per-yuan")["rounding"] = "sideways"
    broken.definition["quests"] = [{"code": "q", "name": "Q", "scope": "daily", "steps": []}]
    broken.publish_at = timezone.now() - timedelta(minutes=1)
    broken.status = "scheduled"
    broken.save()
    problems = draft_problems(broken.definition)
    assert any(line.startswith("rules[0].rounding") for line in problems), problems
    assert publish_due_drafts() == []
    broken.refresh_from_db()
    assert broken.status == "failed" and "rounding" in broken.error
    assert buy()["points"] == 100 and not ProgramVersion.objects.exists()


def test_a_scheduled_draft_is_published_once_its_time_has_come(program):
    draft = doubled(draft_new(name="Later"))
    draft.status, draft.publish_at = "scheduled", timezone.now() + timedelta(hours=1)
    draft.save()
    assert publish_due_drafts() == []
    assert [v.number for v in publish_due_drafts(now=timezone.now() + timedelta(hours=2))] == [1]
    assert buy()["points"] == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_events_racing_a_publish_are_each_credited_wholly_under_one_version():
    make_rule("purchase", code="per-yuan", points_per_unit="1", unit_attribute="amount")
    make_rule("purchase", code="visit", growth_per_occurrence=5)
    draft = draft_new(name="Both doubled")
    rule_in(draft.definition, "per-yuan")["points_per_unit"] = "2.0000"
    rule_in(draft.definition, "visit")["growth_per_occurrence"] = 10
    draft.status, draft.publish_at = "scheduled", timezone.now()
    draft.save()
    published = threading.Event()

    def work(i: int):
        if i == 0:
            versions = publish_due_drafts()
            published.set()
            return versions
        answers = []
        while not published.is_set() or len(answers) < 3:
            answers.append(buy(f"racer-{i}"))
        return answers

    results = race(6, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert [v.number for v in results[0]] == [1]
    answers = [answer for worker in results[1:] for answer in worker]
    seen = set()
    for answer in answers:
        credits = {c["rule"]: (c["points"], c["growth"]) for c in answer["credits"]}
        version = answer["program_version"]
        seen.add(version)
        expected = (
            {"per-yuan": (100, 0), "visit": (0, 5)}
            if version == 0
            else {"per-yuan": (200, 0), "visit": (0, 10)}
        )
        assert credits == expected, answer
    assert 1 in seen  # every worker went on until after the publish
    assert_balances_match_ledger()


def test_an_operator_drafts_edits_compares_and_publishes_in_the_admin(admin_client, program):
    response = admin_client.post("/admin/loyalty/programdraft/new-from-live/")
    draft = ProgramDraft.objects.get()
    assert response.url == f"/admin/loyalty/programdraft/{draft.pk}/change/"
    page = admin_client.get(response.url).content.decode()
    assert "The same as the live program." in page

    definition = copy.deepcopy(draft.definition)
    rule_in(definition, "per-yuan")["points_per_unit"] = "3.0000"
    form = {"name": "Triple", "publish_at_0": "", "publish_at_1": "", "text": as_yaml(definition)}
    response = admin_client.post(response.url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    page = admin_client.get(f"/admin/loyalty/programdraft/{draft.pk}/change/").content.decode()
    assert 'class="diff-add">+  points_per_unit: &#x27;3.0000&#x27;' in page

    bad = {**form, "text": "rules: [{code: x}]\nrulez: []"}
    page = admin_client.post(f"/admin/loyalty/programdraft/{draft.pk}/change/", bad)
    assert "rulez: Unknown key." in page.content.decode()

    response = admin_client.post(
        "/admin/loyalty/programdraft/",
        {"action": "publish_now", "_selected_action": [draft.pk], "index": 0},
        follow=True,
    )
    assert "Triple is live as version 1." in response.content.decode()
    assert buy()["points"] == 300
    version = ProgramVersion.objects.get()
    page = admin_client.get(f"/admin/loyalty/programversion/{version.pk}/change/").content
    assert (
        yaml.safe_load(
            page.decode()
            .split('<pre class="program-file">')[1]
            .split("</pre>")[0]
            .replace("&#x27;", "'")
            .replace("&quot;", '"')
            .replace("&amp;", "&")
        )
        == version.definition
    )
    admin_client.post(
        "/admin/loyalty/programversion/",
        {"action": "restore", "_selected_action": [version.pk], "index": 0},
    )
    assert ProgramDraft.objects.filter(based_on=version, status="draft").count() == 1


def test_a_file_loads_as_a_draft_and_changes_nothing_live(program, tmp_path):
    from django.core.management import CommandError, call_command

    definition = copy.deepcopy(live_definition())
    rule_in(definition, "per-yuan")["points_per_unit"] = "5.0000"
    target = tmp_path / "program.yaml"
    target.write_text(as_yaml(definition))
    call_command("load_program", str(target), "--draft", "From a file")
    draft = ProgramDraft.objects.get(name="From a file")
    assert rule_in(draft.definition, "per-yuan")["points_per_unit"] == "5.0000"
    assert buy()["points"] == 100  # live unchanged
    target.write_text("rules: [{code: x}]")
    with pytest.raises(CommandError, match="rules"):
        call_command("load_program", str(target), "--draft", "Broken")
    assert not ProgramDraft.objects.filter(name="Broken").exists()
