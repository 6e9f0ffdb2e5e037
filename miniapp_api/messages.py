"""What the mini-program shows (zh-CN) beside the data: notes on lists and on the case map.

Error titles come from the code of each refusal (core.messages and the domain messages modules), not from here.
"""

# An empty list around the citizen: what to try next.
NOTHING_NEARBY = {
    "toilets": "附近没有找到公厕，可扩大搜索范围后再试。",
    "parks": "附近没有找到公园，可扩大搜索范围后再试。",
    "roadworks": "附近暂无道路施工。",
}
# The case map shows at most a few hundred points; {shown} and {total} are filled in.
MAP_CAPPED = "该范围内有 {total} 个正在办理的问题，仅显示最新的 {shown} 个，请放大地图查看更多。"
MAP_EMPTY = "该范围内暂无正在办理的问题。"
