"""One settings class for the whole application, read from `TG_*` environment variables (and `.env`)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that ship in examples and docs; production must never run with them.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev-secret", "test", "placeholder"})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Everything tongguan reads from its environment; secrets are `SecretStr` and never logged."""

    model_config = SettingsConfigDict(env_prefix="TG_", env_file=".env", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    var_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file under var_dir
    redis_url: str | None = None  # unset: embedded mode, jobs run in-process
    media_root: Path | None = None  # unset: var_dir / "media"
    secret_key: SecretStr = SecretStr("dev-secret")
    access_token_minutes: int = 30  # staff JWT lifetime; revocation takes effect at once regardless
    refresh_token_days: int = 14  # a staff session's lifetime from sign-in; refreshing does not extend it
    log_level: str = "INFO"
    log_json: bool = True
    max_body_bytes: int = 1_048_576
    city_center_lon: float = 123.43
    city_center_lat: float = 41.80
    # The console's map: the city's own boundaries are the base map; a raster tile URL template
    # ("https://tiles.example.cn/{z}/{x}/{y}.png", Web Mercator, WGS-84) draws under them when set.
    console_tiles_url: str = ""
    console_poll_seconds: float = 5.0  # how often an open console asks for new queue counts
    city_radius_km: float = 60.0  # grids and points farther than this from the centre are refused

    # Case pipeline and SLA clock
    sla_warn_fraction: float = 0.8  # remind when this share of a stage's allowed time has passed
    sla_sweep_seconds: int = 60  # how often reminders and escalations are looked for
    classify_min_confidence: float = 0.5  # below this a report without a subclass waits for a dispatcher
    road_match_m: float = 30.0  # a report this close to a road segment belongs to it (路长制)
    outbox_stale_seconds: int = 120  # a handed-over job not finished in this time is handed over again
    outbox_max_attempts: int = 8  # then the entry is dead and shown to operators
    # WeChat official account (bots/)
    wechat_appid: str = ""
    wechat_secret: SecretStr = SecretStr("")
    wechat_token: SecretStr = SecretStr("")
    wechat_aes_key: SecretStr = SecretStr("")
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timestamp_window_s: int = 300  # callbacks signed further from now are refused (replays)
    wechat_max_body_bytes: int = 64 * 1024  # a callback body larger than this is refused
    # WeChat mini-program (miniapp_api/)
    miniapp_appid: str = ""
    miniapp_secret: SecretStr = SecretStr("")
    miniapp_api_base: str = "https://api.weixin.qq.com"  # the demo stand-in answers when no appid is set
    miniapp_session_days: int = 30  # a citizen's sign-in lasts this long
    # Rate limits (per minute): each signed-in citizen, and each client address, across all API processes
    rate_user_per_minute: int = 60
    rate_ip_per_minute: int = 300
    rate_reports_per_hour: int = 20  # new reports by one citizen
    # Aliyun SMS (notifications/)
    aliyun_access_key_id: str = ""
    aliyun_access_key_secret: SecretStr = SecretStr("")
    aliyun_sms_endpoint: str = "dysmsapi.aliyuncs.com"
    aliyun_sms_sign_name: str = ""
    aliyun_sms_scheme: str = "https"
    sms_provider: str = "console"  # console (demo), recording (tests), aliyun
    wechat_provider: str = "console"  # console, recording, wechat
    sms_per_minute: int = 1  # per number and signature, checked before sending
    sms_per_hour: int = 5
    sms_per_day: int = 10
    quiet_start_hour: int = 22  # no SMS to citizens from 22:00 to 08:00 unless urgent: deferred, not dropped
    quiet_end_hour: int = 8
    # Field app (field_app_api/): evidence photos, check-ins and offline sync
    field_photo_max_age_min: int = 30  # a check or check-in photo is taken at most this long before (or after) it
    field_gps_accuracy_m: float = 50.0  # a device fix less accurate than this cannot place a check or check-in
    field_clock_skew_s: int = 300  # a device time this far ahead of ours is refused as from the future
    field_max_age_hours: int = 72  # work done offline longer ago than this is refused (a day offline passes)
    checkin_road_radius_m: float = 50.0  # a road segment check-in lies this close to the road line
    sync_max_ops: int = 500  # operations in one offline sync batch
    # Photos (media/)
    media_max_bytes: int = 15 * 1024 * 1024  # one photo, as uploaded
    media_max_pixels: int = 40_000_000  # refused from the header, before decoding (decompression bombs)
    media_url_seconds: int = 3600  # how long a signed media URL stays valid
    face_detector: str = "hog"  # blurs faces before a photo is public: hog (face_recognition) or none (tests only)
    # S3-compatible object storage (media/)
    media_backend: str = "local"
    s3_endpoint: str | None = None
    s3_bucket: str = "tongguan-media"
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    # Patrol tracks (field_app_api/)
    track_max_points: int = 1000  # points in one uploaded batch; a larger batch is refused whole (413)
    track_future_s: int = 300  # phone clocks run a little fast; a point further ahead than this is refused
    track_max_age_hours: int = 72  # an offline phone may upload days late; older points are refused
    track_spoof_kmh: float = 200.0  # faster than this from the last credible point: flagged as spoofed
    track_gap_s: int = 120  # summary: points further apart than this are a gap, not patrol time or distance
    track_summary_accuracy_m: float = 100.0  # summary: fixes less accurate than this are left out
    # Muck trucks (field_app_api/)
    muck_max_positions: int = 2000  # positions in one batch from the vehicle platform; a larger batch is refused
    muck_off_route_s: int = 120  # moving time off every corridor, continuously, before it counts (GPS jitter)
    muck_moving_kmh: float = 5.0  # slower is standing: a parked truck breaks no driving rule
    muck_max_gap_s: int = 300  # a silence longer than this between two positions ends a run off the corridor
    muck_route_cache_s: float = 60.0  # each process re-reads the approved routes this often

    # Lenient enforcement (柔性执法): face matching against the violator register (core/enforcement/)
    face_keys: SecretStr = SecretStr("")  # "id:base64 of 32 bytes,…": the first encrypts, all decrypt (rotation)
    face_match_distance: float = Field(default=0.55, gt=0, lt=1.2)  # closer encodings are offered as the same person
    face_candidates: int = Field(default=5, ge=1, le=20)  # parties shown for one photo, nearest first
    face_side: int = Field(default=1024, ge=320, le=4096)  # photos are analysed at this many pixels a side
    face_min_px: int = Field(default=64, ge=20)  # a face narrower than this in the analysed photo is too small
    face_index: Literal["auto", "exact", "ivf"] = "auto"  # auto: exact below 200,000 encodings, IVF (faiss) above
    face_encodings_per_party: int = Field(default=5, ge=1, le=50)  # the most recent encodings of a party are kept
    face_hold_minutes: int = Field(default=60, ge=1, le=24 * 60)  # an identify result can register a party this long
    enforcement_window_months: int = Field(default=12, ge=1, le=60)  # 首违免罚: no earlier violation in this time
    enforcement_retention_months: int = Field(default=12, ge=1, le=120)  # a party is deleted this long after
    enforcement_catalog: Path | None = None  # the 免罚清单 (JSON); unset: core/enforcement/exemptions.json

    @model_validator(mode="after")
    def _face_keys_well_formed(self) -> Settings:
        from core.enforcement.keys import parse_keys  # keys.py reads Settings: imported here, not at the top

        parse_keys(self.face_keys.get_secret_value())  # a broken key list stops the start, not the first search
        return self

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.env is not Environment.PRODUCTION:
            return self
        bad = []
        if self.secret_key.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 32:
            bad.append("TG_SECRET_KEY (at least 32 characters, not a placeholder)")
        configured = {
            "TG_WECHAT_SECRET": (self.wechat_appid, self.wechat_secret),
            "TG_MINIAPP_SECRET": (self.miniapp_appid, self.miniapp_secret),
            "TG_ALIYUN_ACCESS_KEY_SECRET": (self.aliyun_access_key_id, self.aliyun_access_key_secret),
            "TG_S3_SECRET_KEY": (self.s3_access_key, self.s3_secret_key),
        }
        # A vendor that is configured (its id is set) must come with a real secret.
        for name, (ident, secret) in configured.items():
            if ident and secret.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                bad.append(name)
        if not self.face_keys.get_secret_value().strip():
            bad.append("TG_FACE_KEYS (face encodings are encrypted with keys of their own)")
        if self.aliyun_access_key_id and self.aliyun_sms_scheme != "https":
            bad.append("TG_ALIYUN_SMS_SCHEME (must be https in production)")
        if bad:
            raise ValueError("production refuses placeholder settings: " + ", ".join(bad))
        return self

    @property
    def effective_database_url(self) -> str:
        """The configured database, or the embedded SQLite file under `var_dir`."""
        if self.database_url:
            return self.database_url
        return f"sqlite://{(self.var_dir / 'tongguan.sqlite3').as_posix()}"

    @property
    def effective_media_root(self) -> Path:
        return self.media_root or self.var_dir / "media"

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured and jobs run in-process."""
        return not self.redis_url


_chosen: Settings | None = None


def get_settings() -> Settings:
    """The process's settings: those the application was built with, else read from the environment once."""
    return _chosen if _chosen is not None else _from_environment()


@lru_cache
def _from_environment() -> Settings:
    return Settings()


def use_settings(settings: Settings | None) -> None:
    """Make `settings` the process's settings (create_app does this), so jobs run in-process read the same."""
    global _chosen
    _chosen = settings


def reset_settings() -> None:
    """Forget the chosen settings and the environment read (tests that change the environment)."""
    use_settings(None)
    _from_environment.cache_clear()
