"""Citizen mini-program API and Open311 (filled by the mini-program issue)."""

from fastapi import APIRouter

router = APIRouter(prefix="/miniapp/v1", tags=["mini-program"])
