"""auth_svc against the real PostgreSQL, called directly and through Envoy's gRPC listener."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, cast

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
from pixelflow.v1 import auth_pb2, auth_pb2_grpc, task_pb2, task_pb2_grpc

from auth_svc.tokens import hash_refresh_token
from common.tokens import b64url_decode, verify_access_token
from infra.stack import AUTH_DATABASE, Stack
from tests.conftest import TEST_PASSWORD, bearer, register_and_login, signing_key_path, unique_email, wait_until

pytestmark = pytest.mark.integration


def code_of(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    return error.code(), error.details()


def in_parallel(calls: list[Callable[[], Any]]) -> list[grpc.StatusCode]:
    """Runs the calls at once (a thread each) and returns their status codes."""

    def status(call: Callable[[], Any]) -> grpc.StatusCode:
        try:
            call()
        except grpc.RpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(status, calls))


def users_with_email(stack: Stack, email: str) -> int:
    quoted = email.replace("'", "''")
    return int(stack.infra.postgres.psql(f"SELECT count(*) FROM users WHERE email = '{quoted}'", AUTH_DATABASE).strip())


@pytest.fixture(params=["direct", "gateway"])
def any_auth(request: pytest.FixtureRequest) -> auth_pb2_grpc.AuthServiceStub:
    channel: grpc.Channel = request.getfixturevalue("auth_channel" if request.param == "direct" else "gateway_channel")
    return auth_pb2_grpc.AuthServiceStub(channel)


def test_full_session_lifecycle(any_auth: auth_pb2_grpc.AuthServiceStub) -> None:
    email = unique_email("Lifecycle").upper()
    user = any_auth.Register(auth_pb2.RegisterRequest(email=email, password=TEST_PASSWORD, display_name=" Ada "))
    assert (user.email, user.display_name) == (email.lower(), "Ada")
    assert uuid.UUID(user.id)

    login = any_auth.Login(auth_pb2.LoginRequest(email=email.lower(), password=TEST_PASSWORD))
    assert login.token_type == "Bearer" and login.expires_in > 0 and login.user.id == user.id

    validated = any_auth.ValidateToken(auth_pb2.ValidateTokenRequest(), metadata=bearer(login.access_token))
    assert (validated.user_id, validated.email) == (user.id, email.lower())
    assert validated.expires_at.seconds > time.time()
    assert any_auth.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(login.access_token)).id == user.id

    refreshed = any_auth.Refresh(auth_pb2.RefreshRequest(refresh_token=login.refresh_token))
    assert refreshed.refresh_token != login.refresh_token
    assert any_auth.ValidateToken(auth_pb2.ValidateTokenRequest(token=refreshed.access_token)).user_id == user.id

    any_auth.Logout(auth_pb2.LogoutRequest(refresh_token=refreshed.refresh_token))
    for token in (login.access_token, refreshed.access_token):
        code, _ = code_of(partial(any_auth.ValidateToken, auth_pb2.ValidateTokenRequest(token=token)))
        assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = code_of(lambda: any_auth.Refresh(auth_pb2.RefreshRequest(refresh_token=refreshed.refresh_token)))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_logout_with_only_the_access_token(auth: auth_pb2_grpc.AuthServiceStub) -> None:
    login = register_and_login(auth)
    auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(login.access_token))
    code, _ = code_of(lambda: auth.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(login.access_token)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = code_of(lambda: auth.Logout(auth_pb2.LogoutRequest()))
    assert code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("email", "password", "display_name", "field"),
    [
        ("", TEST_PASSWORD, "", "email"),
        ("not-an-email", TEST_PASSWORD, "", "email"),
        ("a@" + "b" * 250 + ".com", TEST_PASSWORD, "", "email"),
        (None, "", "", "password"),
        (None, "short", "", "password"),
        (None, " " * 12, "", "password"),
        (None, "x" * 73, "", "password"),
        (None, "é" * 37, "", "password"),  # 37 characters, 74 bytes
        (None, TEST_PASSWORD, "n" * 101, "display_name"),
        (None, TEST_PASSWORD, "tab\there", "display_name"),
    ],
)
def test_bad_registrations_are_invalid_argument_and_write_nothing(
    stack: Stack, auth: auth_pb2_grpc.AuthServiceStub, email: str | None, password: str, display_name: str, field: str
) -> None:
    email = unique_email("bad") if email is None else email
    with pytest.raises(grpc.RpcError) as caught:
        auth.Register(auth_pb2.RegisterRequest(email=email, password=password, display_name=display_name))
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details() or field.replace("_", " ") in error.details() or "email" in error.details()
    # The violated field is also machine-readable (google.rpc.BadRequest in the status details).
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    bad_request = error_details_pb2.BadRequest()
    assert status_pb2.Status.FromString(details).details[0].Unpack(bad_request)
    assert bad_request.field_violations[0].field == field
    assert users_with_email(stack, email.strip().lower()) == 0


def test_duplicate_email_is_already_exists_whatever_its_case(stack: Stack, auth: auth_pb2_grpc.AuthServiceStub) -> None:
    email = unique_email("dup")
    auth.Register(auth_pb2.RegisterRequest(email=email, password=TEST_PASSWORD))
    code, message = code_of(
        lambda: auth.Register(auth_pb2.RegisterRequest(email=f"  {email.upper()} ", password=TEST_PASSWORD))
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS and "already exists" in message
    assert users_with_email(stack, email) == 1


def test_twenty_concurrent_registrations_make_exactly_one_user(
    stack: Stack, auth: auth_pb2_grpc.AuthServiceStub
) -> None:
    email = unique_email("race")

    request = auth_pb2.RegisterRequest(email=email, password=TEST_PASSWORD)
    codes = in_parallel([partial(auth.Register, request)] * 20)
    assert codes.count(grpc.StatusCode.OK) == 1
    assert codes.count(grpc.StatusCode.ALREADY_EXISTS) == 19
    assert users_with_email(stack, email) == 1


def test_login_failures_look_the_same(auth: auth_pb2_grpc.AuthServiceStub) -> None:
    email = unique_email("login")
    auth.Register(auth_pb2.RegisterRequest(email=email, password=TEST_PASSWORD))
    wrong = code_of(lambda: auth.Login(auth_pb2.LoginRequest(email=email, password="wrong password")))
    unknown = code_of(lambda: auth.Login(auth_pb2.LoginRequest(email=unique_email("nobody"), password=TEST_PASSWORD)))
    too_long = code_of(lambda: auth.Login(auth_pb2.LoginRequest(email=email, password=TEST_PASSWORD + "x" * 80)))
    assert wrong == unknown == too_long == (grpc.StatusCode.UNAUTHENTICATED, "incorrect email or password")


def test_login_is_throttled_per_account(auth: auth_pb2_grpc.AuthServiceStub) -> None:
    email = unique_email("throttle")
    auth.Register(auth_pb2.RegisterRequest(email=email, password=TEST_PASSWORD))
    for _ in range(5):
        code, _ = code_of(lambda: auth.Login(auth_pb2.LoginRequest(email=email, password="guess-guess")))
        assert code == grpc.StatusCode.UNAUTHENTICATED
    # Even the right password is refused now: the attacker learns nothing from the 6th try.
    with pytest.raises(grpc.RpcError) as caught:
        auth.Login(auth_pb2.LoginRequest(email=email, password=TEST_PASSWORD))
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "try again in" in error.details()
    retry = error_details_pb2.RetryInfo()
    status = status_pb2.Status.FromString(dict(error.trailing_metadata())["grpc-status-details-bin"])
    assert status.details[0].Unpack(retry) and retry.retry_delay.seconds > 0
    # Other accounts are not affected.
    register_and_login(auth)


def test_parallel_guesses_are_all_counted(auth: auth_pb2_grpc.AuthServiceStub) -> None:
    email = unique_email("burst")
    auth.Register(auth_pb2.RegisterRequest(email=email, password=TEST_PASSWORD))

    guesses = [auth_pb2.LoginRequest(email=email, password=f"guess-{i:04d}") for i in range(20)]
    codes = in_parallel([partial(auth.Login, guess) for guess in guesses])
    assert codes.count(grpc.StatusCode.UNAUTHENTICATED) == 5
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 15


def _age_refresh_use(stack: Stack, refresh_token: str, seconds: int) -> None:
    """Moves the time a refresh token was used into the past (instead of waiting for it)."""
    token_hash = hash_refresh_token(refresh_token)
    stack.infra.postgres.psql(
        f"UPDATE refresh_tokens SET used_at = used_at - interval '{seconds} seconds' WHERE token_hash = '{token_hash}'",
        AUTH_DATABASE,
    )


def test_a_refresh_retried_after_a_lost_answer_keeps_the_session(auth: auth_pb2_grpc.AuthServiceStub) -> None:
    """The client sent Refresh, the answer was lost, it retries with the token it still has:
    within PIXELFLOW_REFRESH_RETRY_GRACE_SECONDS (10 s) that is a retry, not a theft."""
    login = register_and_login(auth)
    auth.Refresh(auth_pb2.RefreshRequest(refresh_token=login.refresh_token))  # this answer is "lost"
    retried = auth.Refresh(auth_pb2.RefreshRequest(refresh_token=login.refresh_token))
    assert auth.Refresh(auth_pb2.RefreshRequest(refresh_token=retried.refresh_token)).access_token
    assert auth.ValidateToken(auth_pb2.ValidateTokenRequest(token=retried.access_token)).session_id


def test_reused_refresh_token_revokes_the_session(stack: Stack, auth: auth_pb2_grpc.AuthServiceStub) -> None:
    login = register_and_login(auth)
    rotated = auth.Refresh(auth_pb2.RefreshRequest(refresh_token=login.refresh_token))
    _age_refresh_use(stack, login.refresh_token, 3600)  # used an hour ago: past any retry
    code, _ = code_of(lambda: auth.Refresh(auth_pb2.RefreshRequest(refresh_token=login.refresh_token)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # Someone replayed a stolen token: the whole session ends, the legitimate pair included.
    code, _ = code_of(lambda: auth.Refresh(auth_pb2.RefreshRequest(refresh_token=rotated.refresh_token)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = code_of(lambda: auth.ValidateToken(auth_pb2.ValidateTokenRequest(token=rotated.access_token)))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def _claims(login: auth_pb2.LoginResponse, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(login.access_token, options={"verify_signature": False})
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _forgeries(stack: Stack, login: auth_pb2.LoginResponse) -> dict[str, str]:
    real_key = load_pem_private_key(signing_key_path(stack).read_bytes(), password=None)
    assert isinstance(real_key, Ed25519PrivateKey)
    kid = jwt.get_unverified_header(login.access_token)["kid"]
    public_raw = real_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def signed(key: Any = real_key, algorithm: str = "EdDSA", **overrides: Any) -> str:
        return jwt.encode(_claims(login, **overrides), key, algorithm=algorithm, headers={"kid": kid})

    return {
        "garbage": "not.a.token",
        "empty-bearer": " ",
        "refresh-token-as-access": login.refresh_token,
        "alg-none": jwt.encode(_claims(login), cast(Any, None), algorithm="none", headers={"kid": kid}),
        "hs256-with-public-key": signed(public_raw, "HS256"),
        "other-key-same-kid": signed(Ed25519PrivateKey.generate()),
        "missing-exp": signed(exp=None),
        "expired": signed(exp=int(time.time()) - 120, iat=int(time.time()) - 1000),
        "wrong-audience": signed(aud="another-service"),
        "wrong-issuer": signed(iss="https://evil.example"),
        "not-an-access-token": signed(typ="refresh"),
        "tampered-payload": login.access_token.rsplit(".", 1)[0][:-4] + "AAAA." + login.access_token.rsplit(".", 1)[1],
    }


def test_validate_token_rejects_every_forgery(stack: Stack, auth: auth_pb2_grpc.AuthServiceStub) -> None:
    login = register_and_login(auth)
    # The control: the real key really is the one the service signs with.
    real_key = load_pem_private_key(signing_key_path(stack).read_bytes(), password=None)
    assert isinstance(real_key, Ed25519PrivateKey)
    resigned = jwt.encode(
        _claims(login, jti=uuid.uuid4().hex),
        real_key,
        algorithm="EdDSA",
        headers={"kid": jwt.get_unverified_header(login.access_token)["kid"]},
    )
    assert auth.ValidateToken(auth_pb2.ValidateTokenRequest(token=resigned)).user_id == login.user.id

    for name, token in _forgeries(stack, login).items():
        code, _ = code_of(partial(auth.ValidateToken, auth_pb2.ValidateTokenRequest(token=token)))
        assert code == grpc.StatusCode.UNAUTHENTICATED, name
        code, _ = code_of(partial(auth.GetMe, auth_pb2.GetMeRequest(), metadata=bearer(token)))
        assert code == grpc.StatusCode.UNAUTHENTICATED, name

    code, _ = code_of(lambda: auth.ValidateToken(auth_pb2.ValidateTokenRequest()))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_other_services_can_verify_tokens_with_the_published_keys(auth: auth_pb2_grpc.AuthServiceStub) -> None:
    login = register_and_login(auth)
    published = auth.GetPublicKeys(auth_pb2.GetPublicKeysRequest())
    keys = {key.kid: Ed25519PublicKey.from_public_bytes(b64url_decode(key.x)) for key in published.keys}
    assert all(key.alg == "EdDSA" and key.crv == "Ed25519" for key in published.keys)
    claims = verify_access_token(login.access_token, keys, issuer=published.issuer, audience=published.audience)
    assert claims.user_id == login.user.id


def test_revocations_are_listed_for_verifiers(auth: auth_pb2_grpc.AuthServiceStub) -> None:
    login = register_and_login(auth)
    session_id = auth.ValidateToken(auth_pb2.ValidateTokenRequest(token=login.access_token)).session_id
    before = auth.ListRevocations(auth_pb2.ListRevocationsRequest())
    auth.Logout(auth_pb2.LogoutRequest(refresh_token=login.refresh_token))
    after = auth.ListRevocations(auth_pb2.ListRevocationsRequest(since=before.as_of))
    revoked = {item.session_id: item for item in after.revocations}
    assert session_id in revoked
    assert revoked[session_id].expires_at.seconds > revoked[session_id].revoked_at.seconds
    future = Timestamp(seconds=int(time.time()) + 3600)
    assert not auth.ListRevocations(auth_pb2.ListRevocationsRequest(since=future)).revocations


def test_a_revocation_committed_late_is_still_seen(stack: Stack, auth: auth_pb2_grpc.AuthServiceStub) -> None:
    """A revoking transaction stamps `revoked_at` when it starts; one that commits after a
    poller's last look carries a time before it. The poller must not skip it."""
    login = register_and_login(auth)
    session = auth.ValidateToken(auth_pb2.ValidateTokenRequest(token=login.access_token)).session_id
    with grpc.insecure_channel(stack.address("api_svc")) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        request = task_pb2.ListTasksRequest()
        tasks.ListTasks(request, metadata=bearer(login.access_token))
        # What a transaction that began 5 s ago and commits now leaves behind.
        stack.infra.postgres.psql(
            f"UPDATE sessions SET revoked_at = now() - interval '5 seconds' WHERE id = '{session}'", AUTH_DATABASE
        )

        def refused() -> bool:
            try:
                tasks.ListTasks(request, metadata=bearer(login.access_token))
            except grpc.RpcError as exc:
                return exc.code() == grpc.StatusCode.UNAUTHENTICATED
            return False

        wait_until(refused, "api_svc never saw the late revocation", timeout=15)
