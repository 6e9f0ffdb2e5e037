"""Request dependencies of the console: who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from core.accounts.tokens import StaffPrincipal, authenticate_bearer
from core.cases.workflow import Actor

# auto_error=False: a missing token becomes our own 401 problem+json, not FastAPI's plain error.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def current_staff(token: Annotated[str | None, Depends(oauth2_scheme)]) -> StaffPrincipal:
    """The signed-in staff member; 401 without a valid bearer token."""
    return await authenticate_bearer(token)


CurrentStaff = Annotated[StaffPrincipal, Depends(current_staff)]


async def current_actor(staff: CurrentStaff) -> Actor:
    """The signed-in staff member as a workflow actor, with their role grants."""
    return Actor(kind="staff", id=str(staff.staff_id), name=staff.display_name, grants=staff.roles)


CurrentActor = Annotated[Actor, Depends(current_actor)]
