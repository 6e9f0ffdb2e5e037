"""The chat conversation of one citizen (公众号随手拍): where it stands, what a message moves it to, what to reply.

Pure logic over the state, the draft and what the message holds; the job (`core/chat/flows.py`) looks things up
(is the point in the city, does the address name a place) before, and submits the report after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.chat import messages as say

START_WORDS = frozenset({"我要上报", "上报", "随手拍", "举报"})
CANCEL_WORDS = frozenset({"取消", "退出", "算了"})
CONFIRM_WORDS = frozenset({"确认", "确定", "是", "提交", "好"})
REPORT_MENU_KEY = "REPORT"  # the custom menu's click key for 我要上报


@dataclass(frozen=True)
class Said:
    """What a message brings, already looked up where that needs the database."""

    kind: str  # text, image, photo_failed, location, click, other
    text: str = ""
    photo: str = ""  # the WeChat MediaId of an image
    point: tuple[float, float] | None = None  # (lon, lat) GCJ-02, inside the city
    point_outside: bool = False
    label: str = ""  # the location's label, or the matched place of an address
    address_point: tuple[float, float] | None = None  # WGS-84, when `text` names a known place


@dataclass
class Step:
    state: str
    draft: dict[str, Any]
    replies: list[str] = field(default_factory=list)
    submit: bool = False  # the citizen confirmed: submit the draft


def step(state: str, draft: dict[str, Any], said: Said) -> Step:
    """The next state and replies for what the citizen said while the conversation is in `state`."""
    text = said.text.strip()
    if text in CANCEL_WORDS:
        return Step("idle", {}, [say.CANCELLED if state != "idle" else say.NOTHING_TO_CANCEL])
    if state == "idle":
        return _idle(said, text)
    draft = dict(draft)
    replies: list[str] = []
    if state == "confirm" and text in CONFIRM_WORDS:
        return Step("idle", draft, [], submit=True)
    if said.kind == "photo_failed":  # the photo could not be taken in: say why, keep the rest
        return Step(state, draft, [said.text])
    if said.kind == "image" and said.photo:
        draft["photos"] = [*draft.get("photos", []), said.photo][:9]
    elif said.kind == "location":
        if said.point_outside:
            return Step(state, draft, [say.OUTSIDE_CITY])
        if said.point:
            draft.update(lon=said.point[0], lat=said.point[1], datum="gcj02", address=said.label)
            replies.append(say.GOT_LOCATION.format(label=said.label or "已定位"))
    elif said.kind == "text" and text:
        if state == "await_description" or not draft.get("description"):
            draft["description"] = text[:2000]
        elif "lon" not in draft:
            if said.address_point is None:
                return Step(state, draft, [say.ADDRESS_UNKNOWN])
            draft.update(lon=said.address_point[0], lat=said.address_point[1], datum="wgs84", address=text[:256])
            replies.append(say.GOT_LOCATION.format(label=said.label))
    else:
        return Step(state, draft, [say.FALLBACK])
    return _ask_next(draft, replies)


def _idle(said: Said, text: str) -> Step:
    if text in START_WORDS or (said.kind == "click" and said.text == REPORT_MENU_KEY):
        return Step("await_description", {}, [say.ASK_DESCRIPTION])
    if said.kind == "photo_failed":
        return Step("idle", {}, [said.text])
    if said.kind in ("image", "location"):  # a photo or a place first: the report starts from it
        return step("await_description", {}, said)
    if said.kind == "text" and text:
        return Step("idle", {}, [say.OFFER_REPORT])
    return Step("idle", {}, [say.FALLBACK])


def _ask_next(draft: dict[str, Any], replies: list[str]) -> Step:
    if not draft.get("description"):
        return Step("await_description", draft, [*replies, say.ASK_DESCRIPTION_AFTER])
    if "lon" not in draft:
        ask = say.ASK_LOCATION if draft.get("photos") else say.ASK_PHOTO_OR_LOCATION
        return Step("await_details", draft, [*replies, ask])
    place, photos = draft.get("address") or "已定位", len(draft.get("photos", []))
    summary = say.CONFIRM.format(description=draft["description"][:60], place=place, photos=photos)
    return Step("confirm", draft, [*replies, summary])
