"""LiteLLM's proxy as the peer of `policyroute serve` in bench_serve.py (`--compare-litellm`).

Started from its own virtual environment (never this project's dependency) with the config
closest to the policy's: the three tiers as models against the same fake upstream, and
`auto` as LiteLLM's rule-based complexity router over them (SIMPLE -> haiku, MEDIUM ->
sonnet, COMPLEX and REASONING -> opus) when that LiteLLM has one, otherwise `auto` as a
plain model group of the default tier. One worker, as `policyroute serve` runs one.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx2
from serve_load import free_port, wait_up

# LiteLLM refuses to start without a master key; the bench's clients send this one.
MASTER_KEY = "sk-bench-" + "0123456789abcdef" * 2
TIERS = {
    "haiku": "claude-haiku-4-5",
    "sonnet": "claude-sonnet-4-6",
    "opus": "claude-opus-4-7",
}
COMPLEXITY_TIERS = {"SIMPLE": "haiku", "MEDIUM": "sonnet", "COMPLEX": "opus", "REASONING": "opus"}


def has_complexity_router(python: Path) -> bool:
    probe = "import litellm.router_strategy.complexity_router.complexity_router"
    return subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0


def config(upstream: str, complexity: bool) -> dict[str, object]:
    """The proxy's config (JSON is YAML, so no YAML writer is needed)."""
    models: list[dict[str, object]] = [
        {
            "model_name": name,
            "litellm_params": {"model": f"anthropic/{model}", "api_base": upstream, "api_key": "b"},
        }
        for name, model in TIERS.items()
    ]
    if complexity:
        auto: dict[str, object] = {
            "model": "auto_router/complexity_router",
            "complexity_router_config": {"tiers": COMPLEXITY_TIERS},
        }
    else:
        auto = {"model": f"anthropic/{TIERS['sonnet']}", "api_base": upstream, "api_key": "b"}
    models.insert(0, {"model_name": "auto", "litellm_params": auto})
    return {"model_list": models, "general_settings": {"master_key": MASTER_KEY}}


def routed_to(url: str, body: bytes) -> str:
    """The deployment LiteLLM's `auto` picked for `body` (its `x-litellm-model-name`)."""
    r = httpx2.post(
        url + "/v1/messages",
        content=body,
        headers={"x-api-key": MASTER_KEY, "content-type": "application/json"},
        timeout=60,
    )
    r.raise_for_status()
    return r.headers.get("x-litellm-model-name", "?")


def start(
    venv: Path, upstream: str, workdir: Path
) -> tuple[subprocess.Popen[bytes], str, str, str]:
    """Start LiteLLM's proxy; returns the process, its URL, its version and how `auto` routes."""
    python = venv / "bin" / "python"
    exe = venv / "bin" / "litellm"
    if not exe.exists():
        raise SystemExit(
            f"--litellm-venv {venv}: no bin/litellm there "
            "(python3 -m venv DIR && DIR/bin/pip install 'litellm[proxy]')"
        )
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    complexity = has_complexity_router(python)
    path = workdir / "litellm.yaml"
    path.write_text(json.dumps(config(upstream, complexity), indent=2))
    port = free_port()
    env = {
        **os.environ,
        # The price map bundled with the package, not one fetched at start-up.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
    }
    env.pop("ANTHROPIC_BASE_URL", None)
    proc = subprocess.Popen(
        [str(exe), "--config", str(path), "--port", str(port), "--num_workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_up(url, proc, "/health/liveliness", timeout=180)
    how = "complexity_router" if complexity else "a plain model group (no complexity router)"
    return proc, url, version, how
