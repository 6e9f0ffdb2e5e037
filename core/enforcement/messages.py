"""What officers read about enforcement decisions (zh-CN); error titles live in core/messages.py."""

OUTCOMES = {
    "minor": "轻微不罚",
    "first_offence": "首违免罚",
    "normal": "按一般程序处理",
}
GROUNDS = {
    "not_minor": "违法行为不属轻微",
    "not_corrected": "尚未改正",
    "not_prompt": "未在责令期限内改正",
    "harm": "造成了危害后果",
    "earlier_violation": "同一执法机关在期限内已查处该当事人同类违法行为",
    "minor_applies": "违法行为轻微并及时改正，没有造成危害后果，依法不予行政处罚",
    "first_offence_applies": "初次违法且危害后果轻微并及时改正，可以不予行政处罚",
    "minor_not_listed": "该违法行为不在轻微不罚清单内",
    "first_offence_not_listed": "该违法行为不在首违免罚清单内",
}
CAP_EXCEEDED = "{label}超过清单上限（{max}{unit}）"
CAP_NOT_MEASURED = "未填写{label}，无法认定在清单上限（{max}{unit}）以内"
CONFIDENCE = {"high": "高", "medium": "中", "low": "低"}
PARTY_KINDS = {"person": "个人", "business": "单位"}
