"""What citizens read about their reports (zh-CN): statuses before a case exists, and timeline steps."""

# The report itself, before (or instead of) a case.
REPORT_STATUS = {
    "received": "已收到您的反映，正在处理",
    "queued": "已收到您的反映，正在人工分类",
    "rejected": "您的反映未能受理",
}

# Timeline steps a citizen sees, by case action; actions missing here are internal (核实 tasks, reminders...).
CITIZEN_STEPS = {
    "report": "您提交了反映",
    "merge": "其他市民也反映了同一问题",
    "accept": "已受理",
    "reject": "经核实，不予立案",
    "register": "已立案",
    "dispatch": "已派遣至处置单位",
    "redispatch": "已改派至新的处置单位",
    "return": "正在重新安排处置单位",
    "feedback": "处置单位已处理完毕",
    "check_pass": "现场核查通过",
    "check_fail": "现场核查未通过，正在重新处置",
    "rework": "正在重新处置",
    "close": "已办结",
    "approve_extension": "处置时间已延长",
    "approve_suspension": "问题需较长时间解决，已列入计划",
    "resume": "已恢复处置",
    "void": "该问题已撤销",
    "rate": "您已评价",
    "reopen": "问题未解决，已重新办理",
}
SATISFACTION_NAMES = {"satisfied": "满意", "basic": "基本满意", "unsatisfied": "不满意"}

# The answer to a new report from the mini-program (and what happens next).
ACCEPTED = "已收到您的反映，感谢您对城市管理的支持！"
NEXT_STEP = "我们将尽快核实并安排处置，办理进度会通过订阅消息通知您，也可在“我的上报”中查看。"
NEXT_STEP_REVIEW = "您的描述需要人工复核，复核通过后将尽快安排处置。"
MERCHANT_PREFIX = "【商户诉求】"
