"""Request dependencies of the field app: the signed-in staff member (tokens from `POST /auth/token`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from core.accounts.tokens import StaffPrincipal, authenticate_bearer
from core.cases.workflow import Actor
from core.errors import PermissionDenied
from core.settings import Settings
from media.service import Owner

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def current_staff(token: Annotated[str | None, Depends(oauth2_scheme)]) -> StaffPrincipal:
    """The signed-in inspector, crew member or officer; 401 without a valid bearer token."""
    return await authenticate_bearer(token)


CurrentStaff = Annotated[StaffPrincipal, Depends(current_staff)]


async def media_owner(staff: CurrentStaff) -> Owner:
    """Photos taken in the field belong to the staff member who uploads them."""
    return Owner(kind="staff", id=str(staff.staff_id))


async def current_actor(staff: CurrentStaff) -> Actor:
    """The signed-in staff member as a workflow actor, with their role grants."""
    return Actor(kind="staff", id=str(staff.staff_id), name=staff.display_name, grants=staff.roles)


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require_role(actor: Actor, *roles: str) -> None:
    """Refuse a staff member who holds none of these roles (an inspector cannot act as a crew, and so on)."""
    if not any(g.role in roles for g in actor.grants):
        raise PermissionDenied("role_not_allowed", f"this needs one of the roles {', '.join(roles)}")


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(settings_of)]
