"""placeholder"""
from fastapi import APIRouter

router = APIRouter(prefix="/v1")
