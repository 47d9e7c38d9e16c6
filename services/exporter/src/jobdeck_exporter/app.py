"""The exporter's HTTP side: ops routes and signed downloads (``/exports/...``), and its loops.

Downloads are served only for local storage (S3 URLs point at S3). A URL is checked
(signature, expiry) before the file is looked up: a tampered or expired one gets 403,
never the file; a deleted export's file is 404.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from aiohttp import web
from jobdeck.exports import ExportFormat
from jobdeck.settings import Settings
from jobdeck.streams import EventStream
from jobdeck.supervise import supervise
from jobdeck.usage import use_usage_sampler
from jobdeck.web import (
    PG,
    READY_CHECKS,
    REDIS,
    SETTINGS,
    create_app,
    problem,
    use_postgres,
    use_redis,
)

from jobdeck_exporter.config import ExporterConfig
from jobdeck_exporter.consumer import ExportConsumer, Janitor
from jobdeck_exporter.runner import ExportRunner
from jobdeck_exporter.signing import UrlSigner
from jobdeck_exporter.storage import LocalStorage, Storage, attachment, open_storage

CONFIG = web.AppKey("exporter_config", ExporterConfig)
STORAGE = web.AppKey("storage", Storage)
CONSUMER = web.AppKey("consumer", ExportConsumer)
JANITOR = web.AppKey("janitor", Janitor)


def build_app(settings: Settings, config: ExporterConfig) -> web.Application:
    app = create_app(settings)
    app[CONFIG] = config
    app[STORAGE] = open_storage(
        settings.storage_url,
        UrlSigner(config.url_secret),
        config.public_url,
        config.s3_endpoint_url,
        config.s3_region,
    )
    use_redis(app)
    use_usage_sampler(app, "exporter")
    use_postgres(app, min_size=1, max_size=config.concurrency + 4)
    app.cleanup_ctx.append(_workers)
    app.router.add_get("/exports/{key:.+}", download)
    return app


async def _workers(app: web.Application) -> AsyncIterator[None]:
    settings, config, storage = app[SETTINGS], app[CONFIG], app[STORAGE]
    events = EventStream(app[REDIS], settings.stream_maxlen)
    runner = ExportRunner(app[PG], app[REDIS], storage, config, settings.instance, events)
    consumer = ExportConsumer(app[REDIS], app[PG], storage, runner, config, settings.instance)
    janitor = Janitor(app[REDIS], app[PG], storage, config)
    app[CONSUMER], app[JANITOR] = consumer, janitor

    async def consuming() -> None:
        if not consumer.healthy:
            raise RuntimeError("not reading the export stream")

    app[READY_CHECKS]["storage"] = storage.check
    app[READY_CHECKS]["exports"] = consuming
    # /readyz fails while either is dead, and each is restarted.
    loops = ["export-consumer", "export-janitor"]
    supervisor = supervise(app)
    supervisor.start(loops[0], consumer.run)
    supervisor.start(loops[1], janitor.run)
    yield
    # First stop reading: a handed-back export must not come back here.
    await supervisor.stop(names=loops)
    await consumer.stop()


async def download(request: web.Request) -> web.StreamResponse:
    """Serve a stored export to whoever holds its signed URL, until the URL expires."""
    storage = request.app[STORAGE]
    if not isinstance(storage, LocalStorage):
        return problem(404, "exports are stored in S3; use the URL the API returned")
    key = request.match_info["key"]
    refusal = storage.signer.refusal(
        key, request.query.get("expires"), request.query.get("sig"), time.time()
    )
    if refusal is not None:
        return problem(403, f"download refused: {refusal}")
    path = storage.path_of(key)
    if path is None or not path.is_file():
        return problem(404, "no such export (deleted or expired)")
    headers = {"Content-Disposition": attachment(path.name)}
    fmt = next((f for f in ExportFormat if path.suffix == "." + f.extension), None)
    if fmt is not None:  # (the system's MIME table may not know .xlsx or .ndjson)
        headers["Content-Type"] = fmt.content_type
    return web.FileResponse(path, headers=headers)
