"""Request dependencies of the field app: the signed-in staff member (tokens from `POST /auth/token`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from core.accounts.tokens import StaffPrincipal, authenticate_bearer
from media.service import Owner

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def current_staff(token: Annotated[str | None, Depends(oauth2_scheme)]) -> StaffPrincipal:
    """The signed-in inspector, crew member or officer; 401 without a valid bearer token."""
    return await authenticate_bearer(token)


CurrentStaff = Annotated[StaffPrincipal, Depends(current_staff)]


async def media_owner(staff: CurrentStaff) -> Owner:
    """Photos taken in the field belong to the staff member who uploads them."""
    return Owner(kind="staff", id=str(staff.staff_id))
