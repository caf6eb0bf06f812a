"""Login/s and ValidateToken/s against a real stack, beside local JWT verification in-process.

Run with `make bench` (or `python -m bench.auth_bench --rounds 5`). It starts its own throwaway
stack on free ports with the production bcrypt cost, so the numbers are what a deployment on
this machine would see. Results are medians over rounds; compare ratios, not absolutes: the
machines are shared.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

import grpc
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pixelflow.v1 import auth_pb2, auth_pb2_grpc
from rich.console import Console
from rich.table import Table

from auth_svc.config import AuthSettings
from common.tokens import b64url_decode, verify_access_token
from infra.infrastructure import make_temp_root
from infra.stack import Stack, StackPorts

PASSWORD = "benchmark password"  # noqa: S105 - a throwaway user of a throwaway stack


async def _rate(calls: int, concurrency: int, call: Callable[[int], Awaitable[object]]) -> float:
    """Calls per second for `calls` calls spread over `concurrency` concurrent callers."""
    counter = iter(range(calls))

    async def caller() -> None:
        for index in counter:
            await call(index)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return calls / (time.perf_counter() - started)


async def _measure(
    stack: Stack, rounds: int, logins: int, validations: int, concurrency: int
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    async with (
        grpc.aio.insecure_channel(stack.address("auth_svc")) as direct,
        grpc.aio.insecure_channel(stack.gateway_address) as gateway,
    ):
        auth = auth_pb2_grpc.AuthServiceStub(direct)
        via_gateway = auth_pb2_grpc.AuthServiceStub(gateway)
        # One user per concurrent caller: per-account login throttling stays out of the way.
        emails = [f"bench-{uuid.uuid4().hex[:10]}@example.com" for _ in range(concurrency)]
        for email in emails:
            await auth.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD))
        token = (await auth.Login(auth_pb2.LoginRequest(email=emails[0], password=PASSWORD))).access_token
        published = await auth.GetPublicKeys(auth_pb2.GetPublicKeysRequest())
        keys = {k.kid: Ed25519PublicKey.from_public_bytes(b64url_decode(k.x)) for k in published.keys}

        async def login(index: int) -> object:
            email = emails[index % concurrency]
            return await auth.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD))

        def validate_with(stub: auth_pb2_grpc.AuthServiceAsyncStub) -> Callable[[int], Awaitable[object]]:
            async def validate(_: int) -> object:
                return await stub.ValidateToken(auth_pb2.ValidateTokenRequest(token=token))

            return validate

        def local_rate() -> float:
            started = time.perf_counter()
            for _ in range(validations):
                verify_access_token(token, keys, issuer=published.issuer, audience=published.audience)
            return validations / (time.perf_counter() - started)

        for _ in range(rounds):
            results.setdefault("Login (gRPC, direct)", []).append(await _rate(logins, concurrency, login))
            results.setdefault("ValidateToken (gRPC, direct)", []).append(
                await _rate(validations, concurrency, validate_with(auth))
            )
            results.setdefault("ValidateToken (gRPC via Envoy)", []).append(
                await _rate(validations, concurrency, validate_with(via_gateway))
            )
            results.setdefault("local JWT verification (in-process)", []).append(local_rate())
    return results


def main(
    rounds: Annotated[int, typer.Option(min=1)] = 5,
    logins: Annotated[int, typer.Option(min=1, help="Logins per round.")] = 24,
    validations: Annotated[int, typer.Option(min=1, help="Validations per round.")] = 2000,
    concurrency: Annotated[int, typer.Option(min=1)] = 8,
) -> None:
    bcrypt_rounds = AuthSettings().bcrypt_rounds
    root = make_temp_root("pixelflow-bench-")
    with Stack(root, StackPorts.free(), throwaway=True, environment={"PIXELFLOW_LOG_LEVEL": "WARNING"}) as stack:
        results = asyncio.run(_measure(stack, rounds, logins, validations, concurrency))
    local = statistics.median(results["local JWT verification (in-process)"])
    table = Table(
        title=f"auth: medians of {rounds} rounds, {concurrency} concurrent callers, bcrypt cost {bcrypt_rounds}"
    )
    for column in ("operation", "median ops/s", "min", "max", "× local verification"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for name, rates in results.items():
        median = statistics.median(rates)
        table.add_row(name, f"{median:,.0f}", f"{min(rates):,.0f}", f"{max(rates):,.0f}", f"{median / local:.4f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    typer.run(main)
