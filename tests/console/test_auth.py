"""Staff sign-in: OAuth2 password flow, rotating refresh tokens, revocation, refusals. Runs on both databases."""

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from core.accounts.models import StaffAccount, StaffSession
from core.accounts.service import create_staff
from core.accounts.tokens import issue_access_token
from core.audit.models import AuditEntry
from core.settings import Settings
from tests.asgi import serving
from tongguan.app import create_app

PASSWORD = "correct horse"


@pytest.fixture
async def api(db, tmp_path):
    app = create_app(Settings(database_url=db, var_dir=tmp_path, _env_file=None))
    async with serving(app) as c:
        yield c


@pytest.fixture
async def staff(api) -> StaffAccount:
    return await create_staff(username="wang.li", password=PASSWORD, role="dispatcher")


async def sign_in(api, username: str = "wang.li", password: str = PASSWORD) -> httpx.Response:
    return await api.post(
        "/auth/token", data={"username": username, "password": password}, headers={"user-agent": "pytest-browser"}
    )


async def tokens_for(api) -> dict:
    response = await sign_in(api)
    assert response.status_code == 200, response.text
    return response.json()


async def me(api, access_token: str) -> httpx.Response:
    return await api.get("/auth/me", headers={"authorization": f"Bearer {access_token}"})


def without_request_id(response: httpx.Response) -> dict:
    return {k: v for k, v in response.json().items() if k != "request_id"}


def assert_unauthenticated(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_sign_in_returns_a_bearer_token_that_me_accepts(api, staff):
    response = await sign_in(api)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert body["refresh_token"]

    answer = await me(api, body["access_token"])
    assert answer.status_code == 200
    who = answer.json()
    assert (who["staff_id"], who["username"]) == (staff.id, "wang.li")
    assert who["roles"] == [{"role": "dispatcher", "department_code": None, "area_code": ""}]


async def test_wrong_password_and_unknown_user_get_the_same_401_problem_with_a_chinese_title(api, staff):
    wrong = await sign_in(api, password="wrong horse")
    unknown = await sign_in(api, username="nobody")
    for response in (wrong, unknown):
        assert_unauthenticated(response, "invalid_credentials")
    assert without_request_id(wrong) == without_request_id(unknown)
    assert wrong.json()["title"] == "用户名或密码错误。"
    assert not await StaffSession.exists()


async def test_a_disabled_account_cannot_sign_in(api, staff):
    await StaffAccount.filter(id=staff.id).update(active=False)
    response = await sign_in(api)
    assert response.status_code == 403
    assert response.json()["code"] == "account_disabled"
    assert "停用" in response.json()["title"]
    assert not await StaffSession.exists()


async def test_disabling_an_account_refuses_its_open_session(api, staff):
    first = await tokens_for(api)
    await StaffAccount.filter(id=staff.id).update(active=False)
    assert (await me(api, first["access_token"])).json()["code"] == "account_disabled"
    assert (await api.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})).status_code == 403


async def test_refresh_rotates_and_the_old_refresh_token_is_refused(api, staff):
    first = await tokens_for(api)
    response = await api.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await me(api, second["access_token"])).status_code == 200

    # The same session continues, so the first access token still works until it expires.
    assert (await me(api, first["access_token"])).status_code == 200
    assert await StaffSession.all().count() == 1

    reused = await api.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})
    assert_unauthenticated(reused, "session_revoked")


async def test_reusing_an_old_refresh_token_revokes_the_session(api, staff):
    first = await tokens_for(api)
    second = (await api.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})).json()

    await api.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})

    # Whoever held the current pair is signed out too: we cannot tell the thief from the owner.
    assert_unauthenticated(await me(api, second["access_token"]), "session_revoked")
    after = await api.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_unauthenticated(after, "session_revoked")
    entry = await AuditEntry.get(action="staff.session_revoke")
    assert (entry.actor_type, entry.detail) == ("system", {"reason": "refresh_reuse"})


async def test_a_forged_refresh_token_is_refused_without_ending_the_session(api, staff):
    first = await tokens_for(api)
    session_id = first["refresh_token"].split(".")[0]
    forged = await api.post("/auth/refresh", json={"refresh_token": f"{session_id}.guessed.mac"})
    assert_unauthenticated(forged, "token_invalid")
    assert (await me(api, first["access_token"])).status_code == 200


async def test_refresh_without_a_token_is_an_invalid_request(api, staff):
    response = await api.post("/auth/refresh", json={})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


async def test_revoke_ends_access_tokens_immediately(api, staff):
    pair = await tokens_for(api)
    bearer = {"authorization": f"Bearer {pair['access_token']}"}
    response = await api.post("/auth/revoke", headers=bearer)
    assert response.status_code == 204

    assert_unauthenticated(await me(api, pair["access_token"]), "session_revoked")
    refused = await api.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_unauthenticated(refused, "session_revoked")
    entry = await AuditEntry.get(action="staff.session_revoke")
    assert (entry.actor_type, entry.actor_id, entry.detail) == ("staff", str(staff.id), {"reason": "sign_out"})


async def test_an_expired_access_token_is_refused(api, staff):
    await tokens_for(api)
    session = await StaffSession.get(staff_id=staff.id)
    stale = issue_access_token(
        staff_id=staff.id, session_id=session.id, issued_at=datetime.now(UTC) - timedelta(hours=2)
    )
    response = await me(api, stale)
    assert_unauthenticated(response, "token_expired")
    assert response.json()["title"] == "登录已过期，请重新登录。"


async def test_a_token_signed_with_another_key_is_refused(api, staff):
    genuine = jwt.decode((await tokens_for(api))["access_token"], options={"verify_signature": False})
    forged = jwt.encode(genuine, "another key of thirty-two bytes or more", algorithm="HS256")
    assert_unauthenticated(await me(api, forged), "token_invalid")


async def test_a_request_without_a_token_is_a_401_problem(api):
    assert_unauthenticated(await api.get("/auth/me"), "not_authenticated")
    assert_unauthenticated(await api.post("/auth/revoke"), "not_authenticated")


async def test_sign_in_is_audited_without_the_password(api, staff):
    await sign_in(api, password="wrong horse")
    await tokens_for(api)

    refused = await AuditEntry.get(action="staff.sign_in_refused")
    assert (refused.object_id, refused.detail) == (str(staff.id), {"reason": "wrong_password"})
    entry = await AuditEntry.get(action="staff.sign_in")
    session = await StaffSession.get(staff_id=staff.id)
    assert (entry.actor_type, entry.actor_id) == ("staff", str(staff.id))
    assert (entry.object_type, entry.object_id) == ("staff_session", str(session.id))
    assert entry.detail == {"username": "wang.li", "user_agent": "pytest-browser"}
    assert PASSWORD not in str(entry.detail) + str(refused.detail)
    assert len(session.refresh_hash) == 64
