"""The HTTP adapter: FastAPI routers, request dependencies, response schemas, error mapping."""
