"""Languages: the admin speaks Chinese or English as the operator chooses, the catalogs install
compiled with the project, and every string marked for translation has its Chinese text."""

import re
import struct
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = sorted(ROOT.glob("*/locale/zh_Hans/LC_MESSAGES/django.po")) + [
    ROOT / "locale/zh_Hans/LC_MESSAGES/django.po"
]


@pytest.mark.parametrize("catalog", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_marked_string_has_its_chinese_text_and_is_compiled(catalog):
    text = catalog.read_text()
    entries = re.findall(r'\nmsgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', text)
    untranslated = [
        msgid for msgid, msgstr in entries if msgid.strip() != '""' and msgstr.strip() == '""'
    ]
    assert entries and not untranslated
    assert 'msgstr[0] ""' not in text
    assert "#, fuzzy" not in text
    # The compiled catalog is committed beside it, with every message: a fresh install needs
    # no GNU gettext (after editing a .po, run manage.py compilemessages).
    header = catalog.with_suffix(".mo").read_bytes()[:12]
    count = struct.unpack("<I", header[8:12])[0]
    assert count == len(re.findall(r'^msgid "', text, re.M))


TEMPLATE_DIRS = [ROOT / "templates", *sorted(ROOT.glob("*/templates"))]
LITERAL = re.compile(r"""{%\s*(?:translate|trans)\s+(["'])(.+?)\1""")


def test_every_literal_a_template_translates_is_in_a_chinese_catalog():
    """A string marked in a template but left out of every catalog shows in English to a
    Chinese reader; the catalogs' own test cannot see it."""
    from django.utils import translation

    missing = []
    with translation.override("zh-hans"):
        for folder in TEMPLATE_DIRS:
            for template in sorted(folder.rglob("*.html")):
                for _quote, text in LITERAL.findall(template.read_text()):
                    marked = text.replace("%", "%%")  # as the tag looks it up
                    if translation.gettext(marked) == marked:
                        missing.append(f"{template.relative_to(ROOT)}: {text}")
    assert not missing, missing


@pytest.mark.django_db
def test_an_operator_switches_the_admin_to_chinese_and_back(admin_client):
    index = reverse("admin:index")
    assert "Earning rules" in admin_client.get(index).content.decode()

    admin_client.post(reverse("set_language"), {"language": "zh-hans", "next": index})

    page = admin_client.get(index).content.decode()
    assert "会员成长体系管理后台" in page
    assert "成长规则" in page
    form = admin_client.get(reverse("admin:loyalty_earningrule_add")).content.decode()
    assert "每次积分" in form and "冷却秒数" in form  # field labels too
    admin_client.post(reverse("set_language"), {"language": "en", "next": index})
    assert "Earning rules" in admin_client.get(index).content.decode()


@pytest.mark.django_db
def test_the_browsers_language_chooses_when_the_operator_has_not(admin_client):
    page = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    assert "积分商城" in page.content.decode()


def test_api_error_codes_do_not_change_with_the_language(api):
    response = api.get("/api/v1/members/ghost", headers={"Accept-Language": "zh-hans"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "member_not_found"


def test_members_e_mails_are_written_in_the_programs_language():
    from django.template.loader import render_to_string
    from django.utils import translation

    context = {"program": {"name": "会员俱乐部"}, "member": {"display_name": "小王"}, "points": 30}
    with translation.override("zh-hans"):
        subject = render_to_string("emails/we_miss_you_subject.txt", context)
        body = render_to_string("emails/points_expiring.txt", {**context, "expiring": []})
    assert subject == "会员俱乐部想念您"
    assert "小王，您好：" in body and "积分商城" in body
    with translation.override("en"):
        assert render_to_string("emails/we_miss_you_subject.txt", context).startswith("We miss")


def test_api_error_messages_follow_the_callers_language(api):
    response = api.get("/api/v1/members/ghost", headers={"Accept-Language": "zh-hans"})
    assert response.json()["error"]["message"] == "没有此 external_id 的会员。"
    english = api.get("/api/v1/members/ghost", headers={"Accept-Language": "en"})
    assert english.json()["error"]["message"] == "No member with this external_id."


@pytest.mark.django_db
def test_the_admin_index_is_grouped_by_what_operators_do(admin_client):
    response = admin_client.get(reverse("admin:index"))
    sections = [app["name"] for app in response.context["app_list"]]
    assert [str(s) for s in sections[:6]] == [
        "Program: what counts and how much",
        "Engagement: badges, streaks, quests, leaderboards",
        "Rewards catalog",
        "Members",
        "Records: what happened",
        "Integration: API clients and webhooks",
    ]
    program = [m["object_name"] for m in response.context["app_list"][0]["models"]]
    assert program[:3] == ["Program", "Action", "EarningRule"]
    # Every model stays reachable: what the sections leave out follows under its app.
    listed = {m["object_name"] for app in response.context["app_list"] for m in app["models"]}
    assert {"User", "Group", "Redemption", "WebhookDelivery"} <= listed


@pytest.mark.parametrize(
    "catalog",
    sorted(ROOT.glob("*/locale/en/LC_MESSAGES/django.po"))
    + [ROOT / "locale/en/LC_MESSAGES/django.po"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_english_catalogs_say_what_the_code_says(catalog):
    """A stale guess of gettext's (an entry matched to a similar older one) shows as an English
    text that differs from its source."""
    text = catalog.read_text()
    for msgid, msgstr in re.findall(r'\nmsgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', text):
        source, english = (
            "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', part)) for part in (msgid, msgstr)
        )
        if source:  # not the header
            assert english == source
