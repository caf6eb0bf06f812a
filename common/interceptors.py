"""The one place where errors become gRPC statuses, where every call is logged and counted
(common.metrics), and where every request is checked against the rules proto/ declares
(common.validation) before its handler."""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
from grpc_status import rpc_status

from common.errors import ServiceError
from common.logging import request_id_var
from common.metrics import RpcLabels
from common.validation import check

log = logging.getLogger("pixelflow.rpc")

# Checks a call's credentials (raising Unauthenticated) from its metadata.
Authenticate = Callable[[object], Awaitable[object]]

# A request id from outside is echoed into logs: keep it short and printable.
_MAX_REQUEST_ID_LENGTH = 128


def _request_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if (
            key == "x-request-id"
            and isinstance(value, str)
            and 0 < len(value) <= _MAX_REQUEST_ID_LENGTH
            and value.isprintable()
        ):
            return value
    return uuid.uuid4().hex


async def _abort(context: grpc.aio.ServicerContext[Any, Any], method: str, exc: BaseException) -> None:
    if isinstance(exc, ServiceError):
        # grpcio-status writes the google.rpc.Status (with its details) as grpc-status-details-bin.
        await context.abort_with_status(rpc_status.to_status(exc.to_status()))  # type: ignore[attr-defined]  # grpc-stubs lacks it
    if isinstance(exc, NotImplementedError):
        # What generated servicer bases raise for an RPC that has no implementation yet.
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet")
    log.exception("unhandled error in %s", method, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; it has been logged")


def _finish(method: str, labels: RpcLabels, started: float, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    code = context.code() or grpc.StatusCode.OK
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    labels.handled(code, started)
    log.info(
        "rpc finished",
        extra={"method": method, "code": code.name, "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
    )


async def _admit(
    request: Any, context: grpc.aio.ServicerContext[Any, Any], authenticate: Authenticate | None, *, validate: bool
) -> None:
    """Who is calling first (a call without a valid token is UNAUTHENTICATED whatever it
    asks), then whether the request keeps the proto's rules."""
    if authenticate is not None:
        await authenticate(context.invocation_metadata() or ())
    if validate:
        check(request)


def _wrap_unary(
    method: str,
    behavior: Callable[[Any, Any], Awaitable[Any]],
    authenticate: Authenticate | None,
    *,
    grpc_type: str,
    validate: bool = True,
) -> Callable[[Any, Any], Awaitable[Any]]:
    labels = RpcLabels.of(method, grpc_type)

    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        request_id_var.set(_request_id(context))
        started = labels.started()
        try:
            await _admit(request, context, authenticate, validate=validate)
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - every error must become a status
            await _abort(context, method, exc)
        finally:
            _finish(method, labels, started, context)

    return wrapped


def _wrap_stream(
    method: str, behavior: Callable[[Any, Any], AsyncIterator[Any]], authenticate: Authenticate | None
) -> Callable[[Any, Any], AsyncIterator[Any]]:
    labels = RpcLabels.of(method, "server_stream")

    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        request_id_var.set(_request_id(context))
        started = labels.started()
        try:
            await _admit(request, context, authenticate, validate=True)
            async for item in behavior(request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - every error must become a status
            await _abort(context, method, exc)
        finally:
            _finish(method, labels, started, context)

    return wrapped


class ErrorAndLoggingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Maps ServiceError to its status (with rich details), anything else to INTERNAL; checks
    each request against its proto rules, after its service's authenticator (when it has one)
    so that a call without credentials is 401, not 400."""

    def __init__(self, authenticators: Mapping[str, Authenticate] | None = None) -> None:
        # service name → how its callers are checked; services not named are open.
        self._authenticators = {f"/{name}/": check for name, check in (authenticators or {}).items()}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith("/grpc.reflection."):
            return handler
        authenticate = self._authenticators.get(method[: method.rfind("/") + 1])
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(method, handler.unary_unary, authenticate, grpc_type="unary"),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            # An aio stream handler is an async generator, or a coroutine that writes with
            # context.write (grpcio's Health.Watch): the unary wrapper serves the latter. The
            # stubs type both as sync functions.
            behavior: Any = handler.unary_stream
            wrapped = (
                _wrap_stream(method, behavior, authenticate)
                if inspect.isasyncgenfunction(behavior)
                else _wrap_unary(method, behavior, authenticate, grpc_type="server_stream")
            )
            return grpc.unary_stream_rpc_method_handler(
                wrapped,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            # Client streams (CreateUpload): the request iterator is passed where a unary
            # handler takes its request, so the unary wrapper serves them as they are.
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(method, handler.stream_unary, authenticate, grpc_type="client_stream", validate=False),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
