"""What the command-centre page says (zh-CN), keyed by English names; the page's script reads them from the page.

Error sentences are not here: every refusal of the API carries its Chinese `title` (core/messages.py), which the page
shows as it is. Status, action and evaluation labels come from their domain packages.
"""

from core.cases.messages import ACTION_NAMES, STAGE_NAMES, STATUS_NAMES
from core.evaluation.messages import COLUMN_LABELS, DIMENSION_LABELS, LIST_LABELS

PAGE_TITLE = "城市运行管理服务平台 · 指挥中心"

UI = {
    "app_title": "指挥中心",
    "app_subtitle": "城市运行管理服务平台",
    "sign_in": "登录",
    "sign_in_title": "指挥中心登录",
    "username": "用户名",
    "password": "密码",
    "signing_in": "正在登录…",
    "sign_out": "退出",
    "session_ended": "登录已过期，请重新登录。",
    "signed_out": "您已退出登录。",
    "nav_queues": "工作队列",
    "nav_map": "一张图",
    "nav_evaluation": "综合评价",
    "nav_search": "案卷查询",
    "search_placeholder": "输入案卷号，回车查询",
    "search": "查询",
    "search_title": "案卷查询",
    "number": "案卷号",
    "status": "状态",
    "any_status": "全部状态",
    "department": "处置部门",
    "any": "不限",
    "grid": "网格编码",
    "since": "开始日期",
    "until": "结束日期",
    "subclass": "问题类型",
    "address": "地址",
    "deadline": "本阶段时限",
    "opened_at": "上报时间",
    "urgency": "紧急程度",
    "overdue": "已超时",
    "paused": "已暂停计时",
    "reports": "上报次数",
    "no_cases": "该队列暂无案卷。",
    "no_results": "没有符合条件的案卷。",
    "case_not_found_number": "没有找到案卷号为“{number}”的案卷，请核对案卷号。",
    "loading": "正在加载…",
    "page_of": "第 {page} / {pages} 页，共 {total} 件",
    "previous": "上一页",
    "next": "下一页",
    "refresh": "刷新",
    "updated_at": "更新于 {time}",
    "back": "返回",
    "description": "问题描述",
    "photos": "现场照片",
    "no_photos": "无照片",
    "timeline": "办理过程",
    "actions": "可执行操作",
    "no_actions": "您当前没有可执行的操作。",
    "routing": "派遣依据",
    "location": "位置",
    "street": "街道",
    "district": "区",
    "community": "社区",
    "road_segment": "路段",
    "component": "部件编码",
    "note": "办理意见",
    "note_required": "请填写办理意见。",
    "choose_department": "派遣至",
    "confirm": "确定",
    "cancel": "取消",
    "done": "已{action}。",
    "close": "关闭",
    "map_layers": "图层",
    "layer_districts": "区界",
    "layer_streets": "街道界",
    "layer_grids": "单元网格",
    "layer_cases": "在办案卷",
    "layer_heat": "热力图",
    "heat_subclass": "热力问题类型",
    "heat_all": "全部类型",
    "heat_days": "近 {days} 天",
    "legend": "图例",
    "zoom_in": "放大",
    "zoom_out": "缩小",
    "zoom_reset": "全市",
    "open_case": "打开案卷",
    "map_counts": "在办 {total} 件，其中超时 {overdue} 件",
    "evaluation_title": "综合评价",
    "dimension": "评价对象",
    "period": "评价时段",
    "evaluate": "查询",
    "export_csv": "导出 CSV",
    "red_list": "红榜",
    "black_list": "黑榜",
    "red_black_title": "路段红黑榜（至少 {min} 件立案的路段共 {eligible} 条）",
    "trend": "近 12 个月趋势",
    "trend_of": "{name} 近 12 个月综合得分",
    "trend_hint": "选中表格中的一行查看其趋势。",
    "no_rows": "该时段内没有可评价的数据。",
    "band": "等级",
    "score": "综合得分",
    "rank": "名次",
    "shortcuts": "快捷键",
    "shortcut_help": (
        "/ 查询案卷　1 工作队列　2 一张图　3 综合评价　J/K 或 ↑/↓ 选择　Enter 打开　Esc 返回　"
        "地图：方向键平移　+/- 缩放　N/P 逐个查看案卷（超时优先）　? 帮助"
    ),
    "error_network": "无法连接服务器，请检查网络后重试。",
    "error_generic": "请求无法完成，请稍后再试。",
    "role_dispatcher": "派遣员",
    "role_duty_chief": "值班长",
    "role_handler": "处置人员",
    "role_inspector": "监督员",
    "role_officer": "执法队员",
    "role_admin": "管理员",
    "city_wide": "全市",
    "unclassified": "待分类",
    "unclassified_title": "待分类上报",
    "no_reports": "没有等待分类的上报。",
    "report_id": "编号",
    "source": "来源",
    "report_text": "反映内容",
    "reason": "等待原因",
    "received_at": "收到时间",
    "classify": "分类",
    "classify_title": "为上报 {id} 选择问题类型",
    "classified": "已分类，系统将按该类型立案派遣。",
}

REPORT_SOURCES = {
    "miniapp": "小程序",
    "official_account": "公众号",
    "field_app": "监督员上报",
    "hotline": "12319 热线",
    "open311": "外部系统",
    "camera": "视频监控",
    "sensor": "物联感知",
}

# Why a report waits for a person: the code before the colon of its status_reason.
REPORT_REASONS = {
    "unclassified": "无法自动识别问题类型，请人工分类",
    "outside_city": "位置不在本市单元网格内，请核实位置",
}

KINDS = {"event": "事件", "component": "部件"}

QUEUE_NAMES = {
    "to_accept": "待受理",
    "to_verify": "待核实",
    "to_register": "待立案",
    "to_dispatch": "待派遣",
    "with_department": "处置中",
    "to_check": "待核查",
    "to_close": "待结案",
    "waiting_approval": "待审批",
    "overdue": "已超时",
    "suspended": "挂账",
}

URGENCY_NAMES = {"urgent": "紧急", "normal": "一般", "routine": "常规"}

BAND_NAMES = {"A": "优秀", "B": "良好", "C": "合格", "D": "较差", "E": "差"}


def page_messages() -> dict:
    """Every label the page shows, in one object for its script."""
    return {
        "ui": UI,
        "queues": QUEUE_NAMES,
        "statuses": STATUS_NAMES,
        "actions": ACTION_NAMES,
        "stages": STAGE_NAMES,
        "urgency": URGENCY_NAMES,
        "bands": BAND_NAMES,
        "dimensions": DIMENSION_LABELS,
        "columns": COLUMN_LABELS,
        "lists": LIST_LABELS,
        "sources": REPORT_SOURCES,
        "reasons": REPORT_REASONS,
        "kinds": KINDS,
    }
