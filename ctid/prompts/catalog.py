"""The IVR prompt set: which sound files the configured `[ivr.prompts]` need (one per key, one per
incident status) and the words each shipped placeholder says, in Mandarin and English.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ctid.config import Config

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
DEFAULT_LANGUAGE: Language = "zh"

# The incident statuses the status prompt is played for (`incident_status_prefix` + status). Kept
# here rather than imported so the prompts depend on config only; a test checks it matches the
# incident lifecycle's vocabulary.
INCIDENT_STATUSES: tuple[str, ...] = (
    "new",
    "assigned",
    "in_progress",
    "handed_to_expert",
    "escalated",
    "dispatched",
    "accepted",
    "rejected",
    "suspended",
    "resolved",
    "closed",
    "reopened",
)

# key → (Mandarin, English). Keys are the `[ivr.prompts]` keys; `status-<s>` the status prompts.
# The menu text follows the example config's options (1 consultation, 2 fault, 3 status,
# 0 complaint): a site that changes the menu records its own.
TEXTS: dict[str, tuple[str, str]] = {
    "welcome": ("您好，这里是IT服务台。", "Welcome to the IT service desk."),
    "menu": (
        "咨询请按1，报修请按2，查询工单请按3，投诉请按0。",
        "Questions, press 1. Faults, 2. Ticket status, 3. Complaints, 0.",
    ),
    "invalid": ("输入有误，请重新选择。", "That is not a valid choice."),
    "closed": (
        "现在是服务台的非服务时间。",
        "The service desk is closed now.",
    ),
    "callback_offer": ("需要我们回电，请按1。", "To be called back, press 1."),
    "survey": (
        "请为本次服务打分，非常满意请按5，非常不满意请按1。",
        "Please rate this call: press 5 if you were very satisfied, 1 if not at all.",
    ),
    "callback_recorded": (
        "已登记，我们上班后给您回电。",
        "Noted. We will call you back when we open.",
    ),
    "enter_incident": ("请输入工单号，按井号键结束。", "Enter the ticket number, then hash."),
    "incident_unknown": ("没有找到这个工单。", "That ticket was not found."),
    "lunch_overflow": (
        "现在是午休时间，由普通坐席为您服务。",
        "It is lunch time; a colleague will help you.",
    ),
    "goodbye": ("感谢来电，再见。", "Thank you for calling. Goodbye."),
    "status-new": ("工单已登记。", "The ticket is registered."),
    "status-assigned": ("工单已分派。", "The ticket is assigned."),
    "status-in_progress": ("工单正在处理中。", "The ticket is being worked on."),
    "status-handed_to_expert": ("工单已转专家处理。", "An expert is handling the ticket."),
    "status-escalated": ("工单已升级处理。", "The ticket has been escalated."),
    "status-dispatched": ("工单已派给二线处理。", "The ticket is with the second line."),
    "status-accepted": ("二线已接手工单。", "The second line has accepted the ticket."),
    "status-rejected": ("工单已退回服务台。", "The ticket was returned to the desk."),
    "status-suspended": ("工单已挂起。", "The ticket is on hold."),
    "status-resolved": ("工单已解决。", "The ticket is resolved."),
    "status-closed": ("工单已关闭。", "The ticket is closed."),
    "status-reopened": ("工单已重新打开。", "The ticket was reopened."),
}


@dataclass(frozen=True)
class Prompt:
    """One sound the IVR plays: the shipped placeholder's `key` and the configured Asterisk
    name (`ctid/welcome`, played as `STREAM FILE ctid/welcome`)."""

    key: str
    name: str


def required_prompts(cfg: Config) -> tuple[Prompt, ...]:
    """Every sound the configured IVR can ask Asterisk to play."""
    prompts = cfg.ivr.prompts
    out = [
        Prompt(key, str(getattr(prompts, key)))
        for key in type(prompts).model_fields
        if key != "incident_status_prefix"
    ]
    prefix = prompts.incident_status_prefix
    out += [Prompt(f"status-{s}", prefix + s) for s in INCIDENT_STATUSES]
    return tuple(out)
