"""What citizens read about public places (zh-CN): park kinds and road-work states."""

PARK_KIND_NAMES = {
    "pocket": "口袋公园",
    "community": "社区公园",
    "city": "综合公园",
    "country": "郊野公园",
}
ROADWORK_STATE_NAMES = {
    "underway": "施工中",
    "upcoming": "即将施工",
}
