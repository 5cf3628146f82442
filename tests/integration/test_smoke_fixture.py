from insightdesk.shared.queue import QueueClient


async def test_fresh_database_has_the_migrated_schema_and_no_queues(client: QueueClient) -> None:
    assert await client.list_queues() == []
    assert await client.migrate() == 4
