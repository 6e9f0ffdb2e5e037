"""Every refusal a person can meet has its own Chinese sentence, not the generic one."""

import re
from pathlib import Path

from core.messages import ERROR_TITLES

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "media", "notifications", "jobs", "bots", "miniapp_api", "field_app_api", "console", "tongguan")
RAISED = re.compile(r'raise\s+\w+\(\s*"([a-z][a-z0-9_]*)"')


def test_every_error_code_raised_in_the_code_has_a_chinese_title():
    raised = {
        code: path.relative_to(ROOT)
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for code in RAISED.findall(path.read_text(encoding="utf-8"))
    }
    assert len(raised) > 100  # the pattern still finds the raises
    missing = {code: str(path) for code, path in raised.items() if code not in ERROR_TITLES}
    assert missing == {}
    assert all(re.search(r"[\u4e00-\u9fff]", ERROR_TITLES[code]) for code in raised)
