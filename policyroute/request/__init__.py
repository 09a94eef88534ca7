"""Requests: what a routing decision reads, built once per call and checked on the way in.

`attributes` is the registry of every attribute a policy can read; `Request` is made from it.
"""

from .attributes import CHARS_PER_TOKEN, TOKENS_PER_IMAGE
from .checks import RequestError, confidence_value
from .request import Request, normalize_route

__all__ = [
    "CHARS_PER_TOKEN",
    "TOKENS_PER_IMAGE",
    "Request",
    "RequestError",
    "confidence_value",
    "normalize_route",
]
