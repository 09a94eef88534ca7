"""A `policyroute serve` that must refuse to start, run in this process (cli_in_process.py).

A refusal is decided before anything listens (cli/serve.py checks all it can first), so the
command's own code gives the same exit status and stderr as the installed command, without a
fresh interpreter importing the server stack each time (about 7 s at load 7 on this 2-core
machine). Each test module keeps one case through the real entry point (serve_process.py).

Nothing is faked on the way to the refusal. A serve that does not refuse reaches uvicorn,
which is replaced by a tripwire: the test fails there instead of serving.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn
from unittest import mock

import uvicorn
from cli_in_process import Ran, run_main

from .serve_process import clean_env


class StartedInsteadOfRefusing(AssertionError):
    pass


def _tripwire(*args: Any, **kwargs: Any) -> NoReturn:
    raise StartedInsteadOfRefusing("serve went on to listen instead of refusing")


def refuse_serve(*args: str, env: dict[str, str] | None = None) -> Ran:
    """`policyroute serve ARGS` in the environment serve_process.run_serve gives the real
    command: its exit status, stdout and stderr."""
    with (
        mock.patch.object(uvicorn.Server, "run", _tripwire),
        mock.patch.object(uvicorn, "run", _tripwire),
    ):
        return run_main(["serve", *args], env=clean_env(env), cwd=os.getcwd())
