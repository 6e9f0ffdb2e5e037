"""Request dependencies of the mini-program API: the signed-in citizen, rate limits, the WeChat gateway."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.accounts.citizens import CitizenPrincipal, authenticate
from core.cases.workflow import Actor
from core.ratelimit import Limit, RateLimiter
from core.settings import Settings
from media.service import Owner
from miniapp_api.wechat import MiniappGateway, gateway_for

bearer = HTTPBearer(auto_error=False)  # a missing token is our own 401 problem+json


# These are async so FastAPI calls them inline, not in its thread pool.
async def settings_of(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def limiter_of(request: Request) -> RateLimiter:
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:  # an app used without its lifespan (never in service): count in this process
        limiter = request.app.state.rate_limiter = RateLimiter()
    return limiter  # type: ignore[no-any-return]


AppSettings = Annotated[Settings, Depends(settings_of)]
Limiter = Annotated[RateLimiter, Depends(limiter_of)]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def limit_by_address(request: Request, settings: AppSettings, limiter: Limiter) -> None:
    """Every public request counts against its client address."""
    await limiter.hit(f"ip:{_address(request)}", limit=settings.rate_ip_per_minute, window_s=60)


async def current_citizen(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    settings: AppSettings,
    limiter: Limiter,
) -> CitizenPrincipal:
    """The signed-in citizen (401 otherwise); the request counts against their address and their own limit,
    both in one round trip to Redis."""
    citizen = await authenticate(credentials.credentials if credentials else None)
    await limiter.hit_all(
        [
            Limit(f"ip:{_address(request)}", settings.rate_ip_per_minute, 60),
            Limit(f"user:{citizen.citizen_id}", settings.rate_user_per_minute, 60),
        ]
    )
    return citizen


CurrentCitizen = Annotated[CitizenPrincipal, Depends(current_citizen)]


async def gateway(settings: AppSettings) -> MiniappGateway:
    return gateway_for(settings)


Gateway = Annotated[MiniappGateway, Depends(gateway)]


async def citizen_actor(citizen: CurrentCitizen) -> Actor:
    return Actor.citizen(citizen.citizen_id)


async def media_owner(citizen: CurrentCitizen) -> Owner:
    """Photos a citizen uploads belong to them: only they can attach them to a report."""
    return Owner(kind="citizen", id=str(citizen.citizen_id))
