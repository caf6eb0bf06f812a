"""Operators' command line for AdminService (dead letters), over the gateway or api_svc directly:

    python -m api_svc.admin_cli [--server HOST:PORT] dead-letters [--page-size N] [--page-token T]
    python -m api_svc.admin_cli [--server HOST:PORT] replay PARTITION OFFSET

It signs in with PIXELFLOW_ADMIN_EMAIL and PIXELFLOW_ADMIN_PASSWORD (asked for when unset), or
uses the access token in PIXELFLOW_ACCESS_TOKEN. One JSON object per line on stdout; exit code 1
with the server's message on stderr when a call fails.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

import grpc
from google.protobuf.json_format import MessageToJson
from pixelflow.v1 import admin_pb2, admin_pb2_grpc, auth_pb2, auth_pb2_grpc

DEFAULT_SERVER = "127.0.0.1:8080"  # the gateway of `make run`


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api_svc.admin_cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("PIXELFLOW_SERVER", DEFAULT_SERVER))
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("dead-letters", help="list dead letters, oldest first")
    listing.add_argument("--page-size", type=int, default=50)
    listing.add_argument("--page-token", default="")
    replay = commands.add_parser("replay", help="run a dead letter's task again")
    replay.add_argument("partition", type=int)
    replay.add_argument("offset", type=int)
    arguments = parser.parse_args(argv)

    with grpc.insecure_channel(arguments.server) as channel:
        try:
            metadata = (("authorization", f"Bearer {_access_token(channel)}"),)
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            if arguments.command == "dead-letters":
                page = admin.ListDeadLetters(
                    admin_pb2.ListDeadLettersRequest(page_size=arguments.page_size, page_token=arguments.page_token),
                    metadata=metadata,
                    timeout=60,
                )
                for letter in page.dead_letters:
                    _out(MessageToJson(letter, indent=None))
                if page.next_page_token:
                    _out(json.dumps({"nextPageToken": page.next_page_token}))
            else:
                replayed = admin.ReplayDeadLetter(
                    admin_pb2.ReplayDeadLetterRequest(partition=arguments.partition, offset=arguments.offset),
                    metadata=metadata,
                    timeout=60,
                )
                _out(MessageToJson(replayed, indent=None))
        except grpc.RpcError as error:
            failure: Any = error
            sys.stderr.write(f"{failure.code().name}: {failure.details()}\n")
            return 1
    return 0


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _access_token(channel: grpc.Channel) -> str:
    if token := os.environ.get("PIXELFLOW_ACCESS_TOKEN"):
        return token
    email = os.environ.get("PIXELFLOW_ADMIN_EMAIL") or input("admin email: ")
    password = os.environ.get("PIXELFLOW_ADMIN_PASSWORD") or getpass.getpass("password: ")
    login = auth_pb2_grpc.AuthServiceStub(channel).Login(
        auth_pb2.LoginRequest(email=email, password=password), timeout=30
    )
    return str(login.access_token)


if __name__ == "__main__":
    sys.exit(main())
