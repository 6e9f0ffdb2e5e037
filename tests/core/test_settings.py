import pytest
from pydantic import ValidationError

from core.enforcement.keys import new_key_line
from core.settings import Environment, Settings


def test_development_runs_on_embedded_sqlite_without_redis(tmp_path):
    settings = Settings(var_dir=tmp_path, _env_file=None)
    assert settings.effective_database_url == f"sqlite://{tmp_path.as_posix()}/tongguan.sqlite3"
    assert settings.embedded
    assert settings.effective_media_root == tmp_path / "media"


def test_settings_are_read_from_tg_environment(monkeypatch):
    monkeypatch.setenv("TG_DATABASE_URL", "postgres://u:p@db:5432/tg")
    monkeypatch.setenv("TG_REDIS_URL", "redis://cache:6379/0")
    settings = Settings(_env_file=None)
    assert settings.effective_database_url == "postgres://u:p@db:5432/tg"
    assert not settings.embedded


def test_production_refuses_the_placeholder_secret_key():
    with pytest.raises(ValidationError, match="TG_SECRET_KEY"):
        Settings(env=Environment.PRODUCTION, _env_file=None)


def test_production_refuses_a_configured_vendor_without_a_real_secret():
    with pytest.raises(ValidationError, match="TG_ALIYUN_ACCESS_KEY_SECRET"):
        Settings(
            env=Environment.PRODUCTION,
            secret_key="k" * 40,
            aliyun_access_key_id="LTAI-real-id",
            aliyun_access_key_secret="change-me",
            _env_file=None,
        )


def test_production_accepts_real_secrets():
    settings = Settings(
        env=Environment.PRODUCTION,
        secret_key="k" * 40,
        wechat_appid="wx123",
        wechat_secret="a-real-looking-secret-value",
        face_keys=new_key_line("k1"),
        _env_file=None,
    )
    assert settings.env is Environment.PRODUCTION


def test_secrets_do_not_show_in_the_settings_repr():
    settings = Settings(secret_key="super-secret-value-123", _env_file=None)
    assert "super-secret-value-123" not in repr(settings)
