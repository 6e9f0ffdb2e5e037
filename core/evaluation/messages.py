"""Chinese labels of the evaluation's dimensions, columns and lists (zh-CN), keyed by their English names."""

DIMENSION_LABELS = {
    "department": "部门",
    "district": "区",
    "street": "街道",
    "grid": "单元网格",
    "inspector": "监督员",
    "road": "路段",
}

COLUMN_LABELS = {
    "key": "编码",
    "name": "名称",
    # Area indicators (department, district, street, grid, road).
    "reported": "上报数",
    "registered": "立案数",
    "closed": "结案数",
    "closed_on_time": "按期结案数",
    "fixed": "处置数",
    "due": "应按期处置数",
    "fixed_on_time": "按期处置数",
    "reworked": "返工数",
    "rated": "评价数",
    "satisfied": "满意及基本满意数",
    "close_rate": "结案率(%)",
    "on_time_close_rate": "按期结案率(%)",
    "on_time_dispose_rate": "按期处置率(%)",
    "rework_rate": "返工率(%)",
    "avg_dispose_hours": "平均处置时长(小时)",
    "satisfaction_rate": "满意率(%)",
    "registered_score": "立案数分值",
    "density_score": "密度分值",
    # Inspector indicators.
    "field_reports": "上报数",
    "valid_reports": "有效上报数",
    "valid_report_rate": "有效上报率(%)",
    "grid_cases": "责任网格案件数",
    "missed_cases": "漏报数",
    "miss_rate": "漏报率(%)",
    "verify_due": "应核实数",
    "verify_on_time": "按时核实数",
    "verify_on_time_rate": "按时核实率(%)",
    "check_due": "应核查数",
    "check_on_time": "按时核查数",
    "check_on_time_rate": "按时核查率(%)",
    # The composite.
    "score": "综合得分",
    "band": "等级",
    "missing": "缺项",
    # Road red/black list columns in CSV and JSON output.
    "red_black": "红黑榜",
    "red_black_rank": "榜内名次",
}

# Short names of the composite's terms, for the "missing" column.
TERM_LABELS = {
    "registered_score": "立案数分值",
    "density_score": "密度分值",
    "close_rate": "结案率",
    "on_time_dispose_rate": "按期处置率",
    "rework_rate": "返工率",
    "valid_report_rate": "有效上报率",
    "miss_rate": "漏报率",
    "verify_on_time_rate": "按时核实率",
    "check_on_time_rate": "按时核查率",
}

LIST_LABELS = {"red": "红榜", "black": "黑榜"}

EVALUATION_TITLE = "{dimension}综合评价 {period}"
LIST_TITLE = "路段{list} {period}（至少 {min_cases} 件立案的路段共 {eligible} 条）"
EMPTY_NOTE = "该时段内没有可评价的数据。"
MISSING_SEPARATOR = "、"
NO_VALUE = "—"
