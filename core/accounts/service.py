"""Staff accounts: creation with argon2 password hashes, and role grants."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from tortoise.transactions import in_transaction

from core.accounts.models import StaffAccount, StaffRole
from core.audit import service as audit
from core.errors import ConflictError, NotFoundError, ValidationFailed
from core.org.models import Department
from core.regions.models import District, Street

ROLES = ("inspector", "handler", "officer", "dispatcher", "duty_chief", "admin")
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except VerifyMismatchError:
        return False


async def create_staff(
    *,
    username: str,
    password: str,
    role: str,
    department_code: str | None = None,
    area_code: str = "",
    actor: str = "system",
) -> StaffAccount:
    """Create a staff account with one role; refuses unknown roles, weak passwords and taken names."""
    if role not in ROLES:
        raise ValidationFailed("unknown_role", f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed("weak_password", f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    department = None
    if department_code:
        department = await Department.get_or_none(code=department_code)
        if department is None:
            raise NotFoundError("department_not_found", f"department {department_code!r} does not exist")
    if area_code and not (await District.exists(code=area_code) or await Street.exists(code=area_code)):
        raise NotFoundError("area_not_found", f"area {area_code!r} is neither a district nor a street code")
    if await StaffAccount.exists(username=username):
        raise ConflictError("username_taken", f"username {username!r} is taken")
    async with in_transaction():
        staff = await StaffAccount.create(
            username=username, display_name=username, password_hash=hash_password(password)
        )
        await StaffRole.create(staff=staff, role=role, department=department, area_code=area_code)
        await audit.record(
            actor_type="system",
            actor_id=actor,
            action="staff.create",
            object_type="staff_account",
            object_id=str(staff.id),
            detail={"username": username, "role": role, "department": department_code, "area": area_code},
        )
    return staff
