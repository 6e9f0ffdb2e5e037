"""What staff and citizens read when core refuses something (zh-CN), keyed by the error's stable code."""

ERROR_TITLES = {
    "import_rejected": "导入文件有错误，未写入任何数据，请按错误清单修改后重新导入。",
    "catalog_version_not_found": "问题分类版本不存在。",
    "no_active_catalog": "尚未启用问题分类，请先初始化系统数据。",
    "no_route": "该问题无法确定处置单位，请联系值班长人工派遣。",
    "unknown_role": "角色不存在。",
    "weak_password": "密码太短，至少需要 8 个字符。",
    "department_not_found": "部门不存在。",
    "area_not_found": "区域不存在。",
    "username_taken": "用户名已被占用。",
    "invalid_credentials": "用户名或密码错误。",
    "account_disabled": "账号已停用，请联系管理员。",
    "not_authenticated": "请先登录。",
    "token_expired": "登录已过期，请重新登录。",
    "token_invalid": "登录凭证无效，请重新登录。",
    "session_revoked": "登录已失效，请重新登录。",
    "invalid_request": "提交的内容格式不正确，请检查后重试。",
    "body_too_large": "提交的内容太大，请压缩后重试。",
    "not_found": "您访问的内容不存在。",
    "method_not_allowed": "不支持该操作。",
    "internal_error": "系统繁忙，请稍后再试。",
    "unavailable": "系统暂时不可用，请稍后再试。",
    "unknown_dimension": "不支持该评价维度，请选择部门、区、街道、网格、监督员或路段。",
    "bad_period": "评价时段格式不正确，请使用 2026-11 或 2026-11-01..2026-11-15 的形式。",
    "bad_list_size": "红黑榜条数至少为 1。",
}
DEFAULT_TITLE = "请求无法完成，请稍后再试。"


def error_title(code: str) -> str:
    return ERROR_TITLES.get(code, DEFAULT_TITLE)
