"""``PgBroker`` inside a FastAPI application, the way ``faststream.<broker>.fastapi`` does it.

::

    from insightdesk.shared.queue.broker.fastapi import PgRouter

    router = PgRouter(settings.database_url)  # PgBroker's arguments

    @router.subscriber("ticket-actions")
    async def on_action(action: CloseTicket, session: Annotated[Session, Depends(db)]) -> None:
        ...  # FastAPI's dependency injection, as in a path operation

    @router.post("/tickets")
    async def create(ticket: NewTicket) -> None:
        await router.broker.publish(ticket, "ticket-actions")

    app = FastAPI()
    app.include_router(router)  # the app's lifespan starts and stops the broker

Handlers take FastAPI dependencies (``fastapi.Depends``) instead of FastDepends', and
``PgMessage`` / ``PgBrokerDep`` below inject the current message and the broker. Unit tests wrap
``router.broker`` in ``TestPgBroker``. Needs ``fastapi`` (``insightdesk-shared[fastapi]``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, cast

from insightdesk.shared.queue.broker._faststream import FastAPIContext, StreamRouter
from insightdesk.shared.queue.broker.broker import PgBroker
from insightdesk.shared.queue.broker.message import JobDelivery
from insightdesk.shared.queue.broker.message import PgMessage as _PgMessage
from insightdesk.shared.queue.broker.publisher import PgPublisher
from insightdesk.shared.queue.broker.subscriber import PgSubscriber

if TYPE_CHECKING:
    from fastapi import params

if StreamRouter is None:  # pragma: no cover - depends on the installation
    raise ImportError("the FastAPI integration needs fastapi: install insightdesk-shared[fastapi]")

__all__ = ["PgBrokerDep", "PgMessage", "PgRouter"]

PgMessage = Annotated[_PgMessage, FastAPIContext("message")]
PgBrokerDep = Annotated[PgBroker, FastAPIContext("broker")]


class PgRouter(StreamRouter[JobDelivery]):
    """A FastAPI ``APIRouter`` that owns a :class:`PgBroker` (``router.broker``): include it in
    the app and the app's lifespan starts the broker (connects, migrates, starts subscribers)
    and stops it. Keyword arguments not FastAPI's (``client``, ``schema``, ``max_size``,
    ``middlewares``, ...) are ``PgBroker``'s."""

    broker_class = PgBroker
    broker: PgBroker

    def __init__(self, dsn: str = "", **options: Any) -> None:
        options.setdefault("context", None)
        super().__init__(dsn, **options)

    def subscriber(  # type: ignore[override]
        self,
        queue: str,
        *,
        dependencies: Iterable[params.Depends] = (),
        response_model: Any = None,
        response_model_include: Any = None,
        response_model_exclude: Any = None,
        response_model_by_alias: bool = True,
        response_model_exclude_unset: bool = False,
        response_model_exclude_defaults: bool = False,
        response_model_exclude_none: bool = False,
        **options: Any,
    ) -> PgSubscriber:
        """``PgBroker.subscriber``'s arguments, with FastAPI's dependencies and response model."""
        return cast(
            "PgSubscriber",
            super().subscriber(
                queue,
                dependencies=dependencies,
                response_model=response_model,
                response_model_include=response_model_include,
                response_model_exclude=response_model_exclude,
                response_model_by_alias=response_model_by_alias,
                response_model_exclude_unset=response_model_exclude_unset,
                response_model_exclude_defaults=response_model_exclude_defaults,
                response_model_exclude_none=response_model_exclude_none,
                **options,
            ),
        )

    def publisher(self, queue: str = "", **options: Any) -> PgPublisher:
        """``PgBroker.publisher``."""
        return self.broker.publisher(queue, **options)
