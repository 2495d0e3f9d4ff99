"""`evalbatch sandbox`: serve the loopback API simulator in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..errors import ConfigError
from .config import FaultConfig, RateLimit, SandboxConfig

FAULT_KEYS = {
    "429": "rate_429",
    "500": "rate_500",
    "529": "rate_529",
    "drop": "rate_drop",
    "errored": "errored",
    "expired": "expired",
}


def parse_faults(items: list[str]) -> FaultConfig:
    """``429=0.05`` ``500=0.02`` ``529=0.02`` ``drop=0.01`` ``errored=0.05`` ``expired=0.02``
    ``truncate-results=1`` ``script=429,429,500`` (the next requests fail in that order)."""
    faults = FaultConfig()
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--fault {item}: expected NAME=VALUE, e.g. 429=0.05")
        if key == "truncate-results":
            faults.truncate_results = value not in ("0", "false", "")
        elif key == "script":
            faults.script = [0 if v == "drop" else int(v) for v in value.split(",") if v]
            if set(faults.script) - {0, 429, 500, 503, 529}:
                raise ConfigError(f"--fault {item}: each entry is 429, 500, 503, 529 or drop")
        elif key in FAULT_KEYS:
            try:
                rate = float(value)
            except ValueError:
                raise ConfigError(f"--fault {item}: {value!r} is not a probability") from None
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"--fault {item}: a probability between 0 and 1")
            setattr(faults, FAULT_KEYS[key], rate)
        else:
            raise ConfigError(
                f"--fault {item}: unknown fault {key!r} (use "
                f"{', '.join([*FAULT_KEYS, 'truncate-results', 'script'])})"
            )
    return faults


def parse_rate_limit(item: str) -> RateLimit:
    """``MODEL:rpm=50,itpm=40000,otpm=8000`` or ``openai:gpt-5-mini:rpm=50,tpm=200000`` (MODEL
    may be a glob such as ``*``; it is split from the limits at its last colon)."""
    model, sep, rest = item.rpartition(":")
    if not sep or not model or not rest:
        raise ConfigError(f"--rate-limit {item}: expected MODEL:rpm=N,itpm=N,otpm=N")
    limit = RateLimit(model=model)
    for part in rest.split(","):
        key, _, value = part.partition("=")
        if key not in ("rpm", "itpm", "otpm", "tpm") or not value.isdigit():
            raise ConfigError(
                f"--rate-limit {item}: {part!r} (use rpm=N, itpm=N, otpm=N or, for OpenAI, tpm=N)"
            )
        setattr(limit, key, int(value))
    return limit


def sandbox_command(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 = pick a free one).")] = 0,
    responder: Annotated[
        str,
        typer.Option(
            "--responder", help="echo | script:FILE | python:module:function | quality:PROFILE"
        ),
    ] = "echo",
    batch_latency: Annotated[
        float, typer.Option("--batch-latency", help="Seconds a batch takes.")
    ] = 2.0,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", help="e.g. 429=0.05, errored=0.05, truncate-results=1"),
    ] = None,
    rate_limit: Annotated[
        list[str] | None, typer.Option("--rate-limit", help="MODEL:rpm=N,itpm=N,otpm=N")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for every random draw.")] = 0,
    expire_after: Annotated[
        float | None,
        typer.Option("--expire-after", help="Unfinished batch items expire after S seconds."),
    ] = None,
    batch_concurrency: Annotated[
        int,
        typer.Option(
            "--batch-concurrency",
            help="Items of a batch processed together (a wave cannot read its own cache writes).",
        ),
    ] = 1,
    batch_cache_hit_rate: Annotated[
        float,
        typer.Option(
            "--batch-cache-hit-rate",
            min=0.0,
            max=1.0,
            help="Probability that a batch item reads a cache entry its own batch wrote "
            "(entries from before the batch are always read).",
        ),
    ] = 1.0,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback host.")
    ] = False,
) -> None:
    """Serve the loopback Anthropic API simulator (Messages, Batches, count_tokens)."""
    import signal
    import threading

    from .server import SandboxServer

    config = SandboxConfig(
        responder=responder,
        batch_latency=batch_latency,
        faults=parse_faults(fault or []),
        rate_limits=[parse_rate_limit(r) for r in rate_limit or []],
        seed=seed,
        expire_after=expire_after,
        batch_concurrency=batch_concurrency,
        batch_cache_hit_rate=batch_cache_hit_rate,
        host=host,
        port=port,
        allow_remote=allow_remote,
    )
    try:
        server = SandboxServer(config).start()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except RuntimeError as exc:
        raise ConfigError(f"cannot serve on {host}:{port}: {exc}") from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"listening on {server.base_url}", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    sys.stdout.flush()
