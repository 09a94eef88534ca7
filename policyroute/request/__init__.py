"""Requests: what a routing decision reads, built once per call and checked on the way in."""

from .checks import RequestError, confidence_value
from .request import CHARS_PER_TOKEN, TOKENS_PER_IMAGE, Request, normalize_route

__all__ = [
    "CHARS_PER_TOKEN",
    "TOKENS_PER_IMAGE",
    "Request",
    "RequestError",
    "confidence_value",
    "normalize_route",
]
