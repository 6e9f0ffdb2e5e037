"""Command-centre console (filled by the console issue)."""

from fastapi import APIRouter

router = APIRouter(prefix="/console", tags=["console"])
