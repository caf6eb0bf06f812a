"""Translates PresetService RPCs to the domain service (api_svc.presets) and back; nothing else."""

from __future__ import annotations

from typing import Any

import grpc
from pixelflow.v1 import preset_pb2, preset_pb2_grpc

from api_svc.presets import PresetService
from common.auth_client import TokenVerifier
from tasks.model import as_utc, operations_from_document, output_from_document

Context = grpc.aio.ServicerContext[Any, Any]


def preset_to_proto(document: dict[str, Any]) -> preset_pb2.Preset:
    preset = preset_pb2.Preset(
        name=document["name"],
        owner_id=document["owner_id"],
        operations=operations_from_document(document.get("operations", [])),
        output=output_from_document(document.get("output", {})),
    )
    preset.created_at.FromDatetime(as_utc(document["created_at"]))
    preset.updated_at.FromDatetime(as_utc(document["updated_at"]))
    return preset


class PresetServicer(preset_pb2_grpc.PresetServiceServicer):
    def __init__(self, service: PresetService, verifier: TokenVerifier) -> None:
        self._service = service
        self._verifier = verifier

    async def _owner(self, context: Context) -> str:
        return (await self._verifier.caller(context.invocation_metadata())).user_id

    async def CreatePreset(self, request: preset_pb2.CreatePresetRequest, context: Context) -> preset_pb2.Preset:
        owner = await self._owner(context)
        return preset_to_proto(await self._service.create(owner, request.name, request.operations, request.output))

    async def GetPreset(self, request: preset_pb2.GetPresetRequest, context: Context) -> preset_pb2.Preset:
        return preset_to_proto(await self._service.get(await self._owner(context), request.name))

    async def ListPresets(
        self, request: preset_pb2.ListPresetsRequest, context: Context
    ) -> preset_pb2.ListPresetsResponse:
        documents, next_token = await self._service.page(
            await self._owner(context), request.page_size, request.page_token
        )
        return preset_pb2.ListPresetsResponse(
            presets=[preset_to_proto(d) for d in documents], next_page_token=next_token
        )

    async def UpdatePreset(self, request: preset_pb2.UpdatePresetRequest, context: Context) -> preset_pb2.Preset:
        owner = await self._owner(context)
        return preset_to_proto(await self._service.update(owner, request.name, request.operations, request.output))

    async def DeletePreset(
        self, request: preset_pb2.DeletePresetRequest, context: Context
    ) -> preset_pb2.DeletePresetResponse:
        await self._service.delete(await self._owner(context), request.name)
        return preset_pb2.DeletePresetResponse()
