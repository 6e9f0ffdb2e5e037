"""Configuration for tortoise's own CLI (`tortoise makemigrations`, `tortoise history`), read from TG_* settings."""

from core.db import tortoise_config
from core.settings import get_settings

TORTOISE_ORM = tortoise_config(get_settings().effective_database_url)
