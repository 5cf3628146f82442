"""``PgBroker``: FastStream's broker surface over the PostgreSQL queue engine."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import psycopg
from fast_depends import Provider, dependency_provider
from faststream.message import gen_cor_id
from faststream.middlewares import AckPolicy
from faststream.response import PublishType
from faststream.specification.schema import BrokerSpec

from insightdesk.shared.errors import DatabaseError
from insightdesk.shared.queue.broker._faststream import (
    EMPTY,
    BrokerMiddleware,
    BrokerUsecase,
    CodecProto,
    ContextRepo,
    CustomCallable,
    FastDependsConfig,
    LoggerProto,
)
from insightdesk.shared.queue.broker.access_log import make_pg_logger_state
from insightdesk.shared.queue.broker.command import PgPublishCommand
from insightdesk.shared.queue.broker.config import PgBrokerConfig
from insightdesk.shared.queue.broker.message import JobDelivery, PgMessage
from insightdesk.shared.queue.broker.producer import PgProducer
from insightdesk.shared.queue.broker.registrator import PgRegistrator
from insightdesk.shared.queue.client import QueueClient, make_pool
from insightdesk.shared.queue.connections import Executor
from insightdesk.shared.queue.options import JobOptions, QueueOptions
from insightdesk.shared.queue.tasks import Loops

if TYPE_CHECKING:
    from fast_depends.dependencies import Dependant
    from fast_depends.library.serializer import SerializerProto
    from faststream.security import BaseSecurity
    from faststream.specification.schema.extra import Tag, TagDict

    from insightdesk.shared.queue.broker.metrics import QueueMetrics

log = logging.getLogger(__name__)


def public_url(dsn: str) -> str:
    """The DSN without secrets, for the AsyncAPI document and logs."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql://"
    host = str(params.get("host") or "localhost")
    port = params.get("port") or 5432
    user = f"{params['user']}@" if params.get("user") else ""
    dbname = params.get("dbname") or ""
    if host.startswith("/"):  # a Unix socket directory
        return f"postgresql://{user}/{dbname}?host={host}"
    return f"postgresql://{user}{host}:{port}/{dbname}"


class PgBroker(PgRegistrator, BrokerUsecase[JobDelivery, QueueClient, PgBrokerConfig]):
    """A FastStream broker whose queues are the engine's PostgreSQL queues.

    Give it a ``dsn`` (a libpq URI; empty means libpq's ``PG*`` variables): it opens its own
    pool and migrates the schema on connect. Or give it an existing ``client``: it then neither
    migrates nor closes it.
    """

    def __init__(
        self,
        dsn: str = "",
        *,
        client: QueueClient | None = None,
        schema: str = "queue",
        min_size: int = 1,
        max_size: int = 5,
        migrate: bool = True,
        poll_interval: float = 2.0,
        queue_metrics: QueueMetrics | None = None,
        graceful_timeout: float | None = 15.0,
        # FastStream arguments
        id_generator: Callable[[], str] = gen_cor_id,
        decoder: CustomCallable | None = None,
        parser: CustomCallable | None = None,
        codec: CodecProto | None = None,
        dependencies: Sequence[Dependant] = (),
        middlewares: Sequence[BrokerMiddleware[Any, Any]] = (),
        routers: Iterable[PgRegistrator] = (),
        ack_policy: AckPolicy = EMPTY,
        # AsyncAPI
        specification_url: str | None = None,
        description: str | None = None,
        tags: Iterable[Tag | TagDict] = (),
        security: BaseSecurity | None = None,
        # logging
        logger: LoggerProto | None = EMPTY,
        log_level: int = logging.INFO,
        # FastDepends
        apply_types: bool = True,
        serializer: SerializerProto | None = EMPTY,
        provider: Provider | None = None,
        context: ContextRepo | None = None,
    ) -> None:
        self.dsn = client.dsn if client is not None else dsn
        self._given_client = client
        self.loops = client.loops if client is not None else Loops()
        """The engine loops of the broker's client (watch them: ``ctx.watch_queue``)."""
        self.schema_name = client.schema if client is not None else schema
        self.migrate_schema = migrate
        self.queue_metrics = queue_metrics
        self._metrics_task: asyncio.Task[None] | None = None
        super().__init__(
            min_size=min_size,
            max_size=max_size,
            routers=routers,
            config=PgBrokerConfig(
                poll_interval=poll_interval,
                queue_metrics=queue_metrics,
                producer=PgProducer(parser, decoder, codec),
                broker_middlewares=middlewares,
                broker_parser=parser,
                broker_decoder=decoder,
                broker_codec=codec,
                logger=make_pg_logger_state(logger=logger, log_level=log_level),
                fd_config=FastDependsConfig(
                    use_fastdepends=apply_types,
                    serializer=serializer,
                    provider=provider or dependency_provider,
                    context=context or ContextRepo(),
                ),
                broker_dependencies=dependencies,
                graceful_timeout=graceful_timeout,
                ack_policy=ack_policy,
                id_generator=id_generator,
                extra_context={"broker": self},
            ),
            specification=BrokerSpec(
                url=[specification_url or public_url(self.dsn)],
                protocol="postgresql",
                protocol_version=None,
                description=description,
                tags=tags,
                security=security,
            ),
        )

    # ------------------------------------------------------------------ connection

    @property
    def client(self) -> QueueClient:
        """The engine client (connected brokers only): stats, operations, cron, ..."""
        return self.config.broker_config.client

    async def _connect(self) -> QueueClient:
        if self._given_client is not None:
            client = self._given_client
        else:
            pool = make_pool(
                self.dsn,
                min_size=self._connection_kwargs.get("min_size", 1),
                max_size=self._connection_kwargs.get("max_size", 5),
            )
            try:
                await pool.open(wait=True, timeout=30)
            except psycopg.Error as exc:
                await pool.close()
                raise DatabaseError(f"cannot connect to the queue database: {exc}") from exc
            client = QueueClient(pool, schema=self.schema_name, dsn=self.dsn, loops=self.loops)
            if self.migrate_schema:
                try:
                    await client.migrate()
                except BaseException:
                    await pool.close()
                    raise
        self.config.broker_config.connect(client)
        return client

    async def start(self) -> None:
        await self.connect()
        self.config.logger.log(
            f"Connected to {public_url(self.dsn)}", logging.INFO, {"queue": "", "message_id": ""}
        )
        await super().start()
        if self.queue_metrics is not None:
            self._metrics_task = self.queue_metrics.start(self.client, self._queues())

    def _queues(self) -> list[str]:
        return sorted({s.queue for s in self.subscribers if s.calls})  # type: ignore[attr-defined]

    async def stop(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> None:
        """Stop consuming (in-flight jobs finish or go back to the queue), then disconnect."""
        if self._metrics_task is not None:
            self._metrics_task.cancel()
            await asyncio.gather(self._metrics_task, return_exceptions=True)
            self._metrics_task = None
        await super().stop(exc_type, exc_val, exc_tb)
        client, self._connection = self._connection, None
        self.config.broker_config.disconnect()
        if client is not None and client is not self._given_client:
            await client.close()
            await client.pool.close()

    async def ping(self, timeout: float | None = None) -> bool:
        """Whether the database answers within ``timeout`` seconds."""
        client = self._connection
        if client is None:
            return False
        try:
            async with asyncio.timeout(timeout or 5.0):
                async with client.pool.connection() as conn:
                    await conn.execute("SELECT 1")
        except (psycopg.Error, OSError, TimeoutError):
            return False
        return True

    # ------------------------------------------------------------------ queues

    async def declare_queue(self, name: str, options: QueueOptions | None = None) -> None:
        """Create ``name`` or update its definition (idempotent)."""
        await self.client.create_queue(name, options)

    # ------------------------------------------------------------------ publishing

    async def publish(
        self,
        message: Any = None,
        queue: str = "",
        *,
        options: JobOptions | None = None,
        headers: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        reply_to: str = "",
        conn: Executor | None = None,
    ) -> uuid.UUID | None:
        """Send ``message`` to ``queue``; returns the job id (None if a policy rejected it).

        With ``conn`` (a psycopg ``AsyncConnection`` or a SQLAlchemy/SQLModel ``AsyncSession``
        on ``postgresql+psycopg``) the job joins that open transaction: it exists, and wakes
        the consumer, only if the transaction commits.
        """
        cmd = PgPublishCommand(
            message,
            queue=queue,
            options=options,
            conn=conn,
            headers=headers,
            correlation_id=correlation_id or self.config.id_generator(),
            reply_to=reply_to,
            _publish_type=PublishType.PUBLISH,
        )
        result: uuid.UUID | None = await self._basic_publish(cmd, producer=self.config.producer)
        return result

    async def publish_event(
        self,
        event: str,
        message: Any = None,
        *,
        options: JobOptions | None = None,
        headers: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        conn: Executor | None = None,
    ) -> list[uuid.UUID]:
        """Publish domain event ``event``: one job in every queue subscribed to it, atomically
        (and in ``conn``'s transaction when given). Returns the new job ids."""
        cmd = PgPublishCommand(
            message,
            event=event,
            options=options,
            conn=conn,
            headers=headers,
            correlation_id=correlation_id or self.config.id_generator(),
            _publish_type=PublishType.PUBLISH,
        )
        result: list[uuid.UUID] = await self._basic_publish(cmd, producer=self.config.producer)
        return result

    async def publish_batch(
        self,
        *messages: Any,
        queue: str,
        options: JobOptions | None = None,
        headers: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        conn: Executor | None = None,
    ) -> list[uuid.UUID | None]:
        """Send many messages to ``queue`` in one round trip; ids in order (None if rejected)."""
        cmd = PgPublishCommand(
            *messages,
            queue=queue,
            options=options,
            conn=conn,
            headers=headers,
            correlation_id=correlation_id or self.config.id_generator(),
            _publish_type=PublishType.PUBLISH,
        )
        result: list[uuid.UUID | None] = await self._basic_publish_batch(
            cmd, producer=self.config.producer
        )
        return result

    async def request(  # type: ignore[override]
        self,
        message: Any = None,
        queue: str = "",
        *,
        options: JobOptions | None = None,
        headers: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        timeout: float = 30.0,
    ) -> PgMessage:
        """Send a job and wait until it is done; the answer's body is the job's output."""
        cmd = PgPublishCommand(
            message,
            queue=queue,
            options=options,
            headers=headers,
            correlation_id=correlation_id or self.config.id_generator(),
            timeout=timeout,
            _publish_type=PublishType.REQUEST,
        )
        answer: PgMessage = await self._basic_request(cmd, producer=self.config.producer)
        return answer
