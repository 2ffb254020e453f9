"""WebSocket /ws/latest: the latest bar of every ticker, again whenever the features change."""

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from stock_pipeline.api.models import LatestBars
from stock_pipeline.api.security import API_KEY_HEADER, key_name
from stock_pipeline.api.services import Services

router = APIRouter(tags=["stream"])


def latest_bars(services: Services) -> LatestBars:
    """The current snapshot's last row per ticker (empty before the pipeline has run)."""
    snapshot = services.store.features.snapshot()
    if snapshot is None:
        return LatestBars(version=None, last_date=None, bars=[])
    return LatestBars(
        version=snapshot.version, last_date=snapshot.last_date, bars=snapshot.latest()
    )


async def wait_for_change_or_close(websocket: WebSocket, change: asyncio.Event) -> bool:
    """True when the features changed, False when the client went away."""
    changed = asyncio.ensure_future(change.wait())
    received = asyncio.ensure_future(websocket.receive())
    done, pending = await asyncio.wait({changed, received}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return not (received in done and received.result()["type"] == "websocket.disconnect")


@router.websocket("/ws/latest")
async def stream_latest(websocket: WebSocket) -> None:
    """Send the latest bars on connect and after every reload of the feature dataset."""
    services: Services = websocket.app.state.services
    keys = services.config.api_keys
    if keys and key_name(websocket.headers.get(API_KEY_HEADER), keys) is None:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    await websocket.accept()
    try:
        while True:
            change = services.changes.current()
            await websocket.send_text(latest_bars(services).model_dump_json())
            while not change.is_set():
                if not await wait_for_change_or_close(websocket, change):
                    return
    except WebSocketDisconnect:
        return
