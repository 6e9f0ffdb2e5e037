"""Staff accounts: argon2 hashes, roles, refusals, audit."""

import pytest

from core.accounts.models import StaffAccount, StaffRole
from core.accounts.service import create_staff, verify_password
from core.audit.models import AuditEntry
from core.errors import TongguanError
from core.org.models import Department


async def test_a_staff_account_stores_an_argon2_hash_not_the_password(city):
    department = await Department.filter(kind="street_office").first()
    staff = await create_staff(
        username="wang.li", password="correct horse", role="inspector", department_code=department.code
    )
    stored = await StaffAccount.get(id=staff.id)
    assert stored.password_hash.startswith("$argon2")
    assert "correct horse" not in stored.password_hash
    assert verify_password(stored.password_hash, "correct horse")
    assert not verify_password(stored.password_hash, "wrong horse")
    role = await StaffRole.get(staff=staff)
    assert (role.role, role.department_id) == ("inspector", department.code)


async def test_creating_staff_is_audited(city):
    staff = await create_staff(username="night.chief", password="longenough", role="duty_chief", actor="cli:root")
    entry = await AuditEntry.get(object_type="staff_account", object_id=str(staff.id))
    assert (entry.action, entry.actor_id) == ("staff.create", "cli:root")
    assert "longenough" not in str(entry.detail)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"role": "mayor"}, "unknown_role"),
        ({"password": "short"}, "weak_password"),
        ({"department_code": "NOPE"}, "department_not_found"),
        ({"area_code": "999999"}, "area_not_found"),
    ],
)
async def test_bad_staff_requests_are_refused_and_create_nothing(city, kwargs, code):
    args = {"username": "zhang", "password": "longenough", "role": "handler", **kwargs}
    with pytest.raises(TongguanError) as refused:
        await create_staff(**args)
    assert refused.value.code == code
    assert not await StaffAccount.exists(username="zhang")


async def test_a_taken_username_is_refused(city):
    await create_staff(username="zhang", password="longenough", role="handler")
    with pytest.raises(TongguanError) as refused:
        await create_staff(username="zhang", password="otherpassword", role="officer")
    assert refused.value.code == "username_taken"
    assert await StaffRole.filter(staff__username="zhang").count() == 1
