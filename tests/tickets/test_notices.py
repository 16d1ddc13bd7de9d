"""The lifecycle's mails in the site's language: the same dispatch and survey mails in Chinese
and English, words for the vocabulary, every placeholder filled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ctid.i18n import translator
from ctid.tickets.lifecycle import DispatchMail, SatisfactionMail
from ctid.tickets.notices import Site, dispatch_mail, satisfaction_mail
from ctid.tickets.views import IncidentView

AT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")


def _incident() -> IncidentView:
    return IncidentView(
        id=1,
        number="INC-20261123-0007",
        status="dispatched",
        channel="phone",
        request_type="fault",
        category="hardware",
        impact="medium",
        urgency="high",
        priority="P2",
        summary="打印机卡纸",
        description="Tray 2 jams.",
        caller_id=None,
        caller_number="+8613800138000",
        caller_name="王小明",
        owner_seat="seat1",
        owner_employee="E1001",
        owner_group="desktop",
        sla_response_due=AT + timedelta(minutes=30),
        sla_resolve_due=AT + timedelta(hours=8),
        responded_at=None,
        resolved_at=None,
        closed_at=None,
        flags=(),
        satisfaction=None,
        satisfaction_comment=None,
        created_at=AT,
        updated_at=AT,
        version=4,
    )


def _dispatch(locale: str) -> tuple[str, str]:
    mail = dispatch_mail(
        DispatchMail(
            to="pc@example.com",
            dedupe_key="k",
            group="desktop",
            assignee_email=None,
            note="Spare tray in stock",
        ),
        _incident(),
        None,
        accept_url="https://desk/a",
        reject_url="https://desk/r",
        expires_at=AT + timedelta(days=7),
        site=Site("IT 服务台", TZ, translator(locale, "Asia/Shanghai")),
    )
    return mail.subject, mail.text


def test_the_dispatch_mail_in_chinese_and_in_english() -> None:
    subject, text = _dispatch("zh_CN")
    assert subject == "[INC-20261123-0007] P2 已派发给 desktop:打印机卡纸"
    for line in (
        "desktop 团队,您好:",
        "类别:" + " " * 10 + "硬件",  # CJK counts two columns: values line up
        "请求类型:" + " " * 6 + "故障",
        "来电人:" + " " * 8 + "王小明",
        "接受:https://desk/a",
        "拒绝:https://desk/r",
        "来自服务台的备注:",
    ):
        assert line in text, line
    assert "{" not in text and "Dear" not in text
    subject, text = _dispatch("en")
    assert subject == "[INC-20261123-0007] P2 dispatched to desktop: 打印机卡纸"
    assert "Dear desktop team," in text and "Category:      Hardware" in text
    assert "Opened:        2026-11-23 09:00 via Phone" in text


def test_the_survey_mail_in_chinese() -> None:
    mail = satisfaction_mail(
        SatisfactionMail(to="wang@example.com", dedupe_key="s", send_at=AT),
        _incident(),
        None,
        survey_url="https://desk/s",
        expires_at=AT + timedelta(days=14),
        site=Site("IT 服务台", TZ, translator("zh_CN", "Asia/Shanghai")),
    )
    assert mail.subject == "[INC-20261123-0007] 您对我们的服务满意吗?"
    assert mail.text.startswith("王小明,您好:")
    assert "请为我们的服务打分(1 到 5 分):https://desk/s" in mail.text
