from insightdesk.shared.queue import QueueClient
from insightdesk.shared.queue.migrator import migrations


async def test_fresh_database_has_the_migrated_schema_and_no_queues(client: QueueClient) -> None:
    latest = max(m.version for m in migrations(client.schema))
    assert latest == len(migrations(client.schema))  # numbered 1..n without gaps
    assert await client.list_queues() == []
    assert await client.migrate() == latest  # already at the newest migration file
    async with client.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            (client.schema,),
        )
        row = await cur.fetchone()
    assert row is not None and row[0] >= 4  # queue, job, subscription, schedule at least
