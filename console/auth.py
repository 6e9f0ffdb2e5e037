"""Staff sign-in for the console and the field app: OAuth2 password flow, refresh, sign-out, who am I."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from console.deps import CurrentStaff
from core.accounts import tokens
from core.errors import ValidationFailed

router = APIRouter(tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class RoleOut(BaseModel):
    role: str
    department_code: str | None
    area_code: str


class MeResponse(BaseModel):
    staff_id: int
    username: str
    display_name: str
    session_id: int
    roles: list[RoleOut]


_REFRESH_BODY = {
    "type": "object",
    "properties": {"refresh_token": {"type": "string"}},
    "required": ["refresh_token"],
}


@router.post("/auth/token")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, response: Response
) -> TokenResponse:
    """Sign in with username and password (form fields); answers an access and a refresh token."""
    pair = await tokens.sign_in(
        username=form.username, password=form.password, user_agent=request.headers.get("user-agent", "")
    )
    return _token_response(pair, response)


@router.post(
    "/auth/refresh",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _REFRESH_BODY},
                "application/x-www-form-urlencoded": {"schema": _REFRESH_BODY},
            },
        }
    },
)
async def refresh(request: Request, response: Response) -> TokenResponse:
    """Trade a refresh token (JSON or form field `refresh_token`) for a new pair; the old one stops working."""
    pair = await tokens.refresh(refresh_token=await _refresh_token_of(request))
    return _token_response(pair, response)


@router.post("/auth/revoke", status_code=204)
async def revoke(staff: CurrentStaff) -> None:
    """Sign out: end the current session, and with it every access token it issued."""
    await tokens.revoke(session_id=staff.session_id)


@router.get("/auth/me")
async def me(staff: CurrentStaff) -> MeResponse:
    """The signed-in staff member and the roles they hold."""
    return MeResponse(
        staff_id=staff.staff_id,
        username=staff.username,
        display_name=staff.display_name,
        session_id=staff.session_id,
        roles=[RoleOut(role=g.role, department_code=g.department_code, area_code=g.area_code) for g in staff.roles],
    )


def _token_response(pair: tokens.TokenPair, response: Response) -> TokenResponse:
    # RFC 6749 §5.1: responses carrying tokens must not be cached.
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token)


async def _refresh_token_of(request: Request) -> str:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError as exc:
            raise ValidationFailed("invalid_request", "body is not valid JSON") from exc
        value = body.get("refresh_token") if isinstance(body, dict) else None
    else:
        value = (await request.form()).get("refresh_token")
    if not isinstance(value, str) or not value:
        raise ValidationFailed("invalid_request", "refresh_token is required (JSON or form field)")
    return value
