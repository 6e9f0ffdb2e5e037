"""What operators and case handlers read about muck trucks (zh-CN): rule names and the details of alerts."""

RULE_NAMES = {
    "off_route": "偏离核准路线",
    "off_hours": "非核准时段行驶",
    "no_cover": "未上传密闭照片",
}
OFF_ROUTE_DETAIL = "距最近的核准路线约{distance}米，自{since}起已偏离{minutes}分钟"
NO_ROUTE_DETAIL = "该车当日没有有效的核准路线"
OFF_HOURS_DETAIL = "核准运输时段为{windows}"
WINDOW_SEPARATOR = "、"
NO_COVER_DETAIL = "当日此前未上传车辆密闭（苫盖）照片"
