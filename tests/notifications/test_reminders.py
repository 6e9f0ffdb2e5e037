"""Ad-permit reminders: 30 and 7 days before expiry, once per permit and expiry, however often the run starts."""

from datetime import date, timedelta

import pytest

from core.notices.models import Notice
from core.permits.models import AdCompany, AdPermit
from notifications.reminders import remind_ads

TODAY = date(2026, 11, 30)


@pytest.fixture
async def permits(db):
    company = await AdCompany.create(
        name="盛京广告有限公司", contact_phone="13912345678", openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    )
    broken = await AdCompany.create(name="无效电话公司", contact_phone="024-2222333")
    made = {}
    for number, days, owner in (
        ("P-20", 20, company),
        ("P-5", 5, company),
        ("P-40", 40, company),
        ("P-gone", -1, company),
        ("P-bad", 10, broken),
    ):
        made[number] = await AdPermit.create(
            number=number, company=owner, site="青年大街与市府大路交叉口东北角", valid_to=TODAY + timedelta(days=days)
        )
    return made


async def keys() -> set[str]:
    return set(await Notice.all().values_list("dedupe_key", flat=True))


async def test_permits_expiring_within_30_days_get_their_notice_by_sms_and_subscribe_message(permits):
    run = await remind_ads(today=TODAY)
    p20, p5 = permits["P-20"], permits["P-5"]
    assert await keys() == {
        f"ad_permit:{p20.id}:{p20.valid_to}:30:sms",
        f"ad_permit:{p20.id}:{p20.valid_to}:30:wx",
        f"ad_permit:{p5.id}:{p5.valid_to}:7:sms",
        f"ad_permit:{p5.id}:{p5.valid_to}:7:wx",
    }
    assert run.refused == {"bad_phone": 1}  # a landline cannot take an SMS: refused, counted, nothing queued
    sms = await Notice.get(dedupe_key=f"ad_permit:{p20.id}:{p20.valid_to}:30:sms")
    assert sms.params["days"] == "20" and sms.to_citizen is False


async def test_a_run_started_again_queues_nothing_twice(permits):
    first = await remind_ads(today=TODAY)
    again = await remind_ads(today=TODAY)
    assert first.queued == 4 and again.queued == 0
    assert await Notice.all().count() == 4


async def test_the_second_notice_comes_seven_days_before_expiry(permits):
    await remind_ads(today=TODAY)
    later = await remind_ads(today=TODAY + timedelta(days=13))  # P-20 now has 7 days left, P-40 has 27
    p20, p40 = permits["P-20"], permits["P-40"]
    assert later.queued == 4
    assert {f"ad_permit:{p20.id}:{p20.valid_to}:7:sms", f"ad_permit:{p40.id}:{p40.valid_to}:30:sms"} <= await keys()


async def test_a_dry_run_counts_and_writes_nothing(permits):
    run = await remind_ads(today=TODAY, dry_run=True)
    assert run.queued == 4 and await Notice.all().count() == 0
